"""A tunix-jax model moves into google-tunix's Gemma module and back with the same
logits, and qwix's LoRA adapters merge into the weights exactly (nox session `compat`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.compat

LENGTH = 9
TARGETS = ["q_einsum", "kv_einsum", "attn_vec_einsum", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_lora_trained_in_google_tunix_merges_into_our_model(preset: str):
    from flax import nnx

    from tunix_google.modules import apply_lora, from_google_tunix, to_google_tunix
    from tunix_jax.models.gemma.config import get_config
    from tunix_jax.models.gemma.transformer import Transformer

    ours = Transformer(get_config(preset), rngs=nnx.Rngs(0))
    theirs = to_google_tunix(ours, jnp.float32)
    tokens = jnp.asarray(np.random.default_rng(0).integers(1, 200, (2, LENGTH)), jnp.int32)
    positions = jnp.broadcast_to(jnp.arange(LENGTH), (2, LENGTH))
    causal = jnp.tril(jnp.ones((2, LENGTH, LENGTH), bool))
    base = np.asarray(theirs(tokens, positions, None, causal)[0])
    np.testing.assert_allclose(np.asarray(ours(tokens, positions)[0]), base, atol=1e-4, rtol=0)

    lora = apply_lora(theirs, TARGETS, rank=4, alpha=8.0, seed=0, batch=2, length=LENGTH)
    # Trained-looking adapters: b starts at zero, which would hide a wrong merge.
    adapters = nnx.state(lora, nnx.LoRAParam)
    key = iter(jax.random.split(jax.random.key(1), len(jax.tree.leaves(adapters))))
    nnx.update(lora, jax.tree.map(lambda x: 0.1 * jax.random.normal(next(key), x.shape), adapters))
    adapted = np.asarray(lora(tokens, positions, None, causal)[0])
    assert np.abs(adapted - base).max() > 0.1

    merged = from_google_tunix(lora, ours, lora_scale=8.0 / 4)
    np.testing.assert_allclose(np.asarray(merged(tokens, positions)[0]), adapted, atol=1e-4, rtol=0)
    # The model it was built from keeps its own weights.
    np.testing.assert_allclose(np.asarray(ours(tokens, positions)[0]), base, atol=1e-4, rtol=0)
