import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tunix_core.errors import ConfigError
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.training.lora import LoRAEinsum, LoRALinear, apply_lora, merge_lora, projection_names
from tunix_jax.weights import random_init

TARGETS = ("q_einsum", "kv_einsum", "attn_vec_einsum", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def inputs():
    tokens = jax.random.randint(jax.random.key(1), (2, 12), 0, 512)
    return tokens, jnp.broadcast_to(jnp.arange(12), (2, 12))


_forward = nnx.jit(lambda model, tokens, positions: model(tokens, positions)[0])


def _model(preset="tiny-gemma3"):
    return Transformer(get_config(preset), rngs=nnx.Rngs(0))


def _perturb_adapters(model):
    adapters = nnx.state(model, nnx.LoRAParam)
    leaves, tree = jax.tree.flatten(adapters)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    noisy = [x + 0.05 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    nnx.update(model, jax.tree.unflatten(tree, noisy))


def test_fresh_adapters_leave_the_model_unchanged(inputs):
    model = _model()
    before = _forward(model, *inputs)
    assert apply_lora(model, TARGETS, rank=4, alpha=8.0, seed=0) == 6 * len(TARGETS)
    after = _forward(model, *inputs)
    np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_merged_weights_compute_what_the_adapters_did(inputs, preset):
    model = _model(preset)
    apply_lora(model, TARGETS, rank=4, alpha=8.0, seed=0)
    _perturb_adapters(model)
    adapted = _forward(model, *inputs)
    assert merge_lora(model) == model.config.num_layers * len(TARGETS)
    merged = _forward(model, *inputs)
    np.testing.assert_allclose(merged, adapted, rtol=1e-4, atol=1e-4)
    # The plain Tunix layout is back: no adapters, the original parameter paths.
    assert not jax.tree.leaves(nnx.state(model, nnx.LoRAParam))
    assert set(nnx.to_pure_dict(nnx.state(model, nnx.Param))) == set(
        nnx.to_pure_dict(nnx.state(_model(preset), nnx.Param))
    )


def test_initial_adapters_are_seeded_draws_named_by_their_projection():
    # A is random_init's normal draw / sqrt(fan in), keyed by the seed and the wrapped
    # projection's module path (so independent of the order adapters are made in); B is zero.
    model = _model()
    apply_lora(model, TARGETS, rank=4, alpha=8.0, seed=3)
    adapters = [(path, module) for path, module in nnx.iter_modules(model)
                if isinstance(module, LoRAEinsum | LoRALinear)]  # fmt: skip
    assert len(adapters) == model.config.num_layers * len(TARGETS)
    for path, adapter in adapters:
        a = adapter.lora_a[...]
        name = "/".join(map(str, path))
        want = random_init.draw(3, f"lora/{name}/lora_a", a.shape,
                                std=1 / math.sqrt(math.prod(a.shape[:-1])))  # fmt: skip
        np.testing.assert_array_equal(a, want, err_msg=name)
        assert a.dtype == jnp.float32 and not np.any(adapter.lora_b[...])
    again = _model()
    apply_lora(again, TARGETS, rank=4, alpha=8.0, seed=4)
    assert not np.array_equal(again.layers[0].attn.q_einsum.lora_a[...],
                              model.layers[0].attn.q_einsum.lora_a[...])  # fmt: skip


def test_adapter_shapes_are_low_rank_over_the_contracted_dimensions():
    model = _model()
    apply_lora(model, ("kv_einsum", "attn_vec_einsum", "down_proj"), rank=3, alpha=6.0, seed=0)
    attn = model.layers[0].attn
    assert isinstance(attn.kv_einsum, LoRAEinsum)
    assert attn.kv_einsum.lora_a[...].shape == (64, 3)  # D x r
    assert attn.kv_einsum.lora_b[...].shape == (3, 2, 2, 16)  # r x (C, K, H)
    assert attn.attn_vec_einsum.lora_a[...].shape == (4, 16, 3)  # (N, H) x r
    assert isinstance(model.layers[0].mlp.down_proj, LoRALinear)
    assert not isinstance(model.layers[0].mlp.up_proj, LoRALinear)
    assert attn.kv_einsum.scale == 2.0


def test_only_adapters_are_trainable_and_they_are_small():
    model = _model()
    apply_lora(model, TARGETS, rank=2, alpha=4.0, seed=0)
    adapters = jax.tree.leaves(nnx.state(model, nnx.LoRAParam))
    frozen = jax.tree.leaves(nnx.state(model, nnx.Not(nnx.LoRAParam)))
    assert 0 < sum(x.size for x in adapters) < 0.2 * sum(x.size for x in frozen)


def test_unknown_target_names_the_config_field():
    model = _model()
    assert {"q_einsum", "gate_proj"} <= projection_names(model)
    with pytest.raises(ConfigError, match=r"trainer\.options\.lora_targets: 'qkv_proj' not in"):
        apply_lora(model, ("q_einsum", "qkv_proj"), rank=2, alpha=4.0, seed=0)


@pytest.mark.parametrize("remat", ["block", "dots"])
def test_remat_differentiates_the_adapters_as_the_train_step_does(remat, inputs):
    """The train step differentiates the adapters alone, the frozen weights coming from
    outside the gradient's trace; remat must neither refuse that nor change the result."""
    tokens, positions = inputs

    def adapter_grads(remat_policy):
        model = Transformer(get_config("tiny-gemma3"), rngs=nnx.Rngs(0), remat=remat_policy)
        apply_lora(model, TARGETS, rank=2, alpha=4.0, seed=0)
        _perturb_adapters(model)
        graphdef, adapters, frozen = nnx.split(model, nnx.LoRAParam, ...)

        @jax.jit
        def grads(adapters, frozen):
            def loss(adapters):
                merged = nnx.merge(graphdef, adapters, frozen)
                return jnp.mean(merged.hidden_states(tokens, positions) ** 2)

            return jax.grad(loss)(adapters)

        return jax.tree.leaves(grads(adapters, frozen))

    plain, rematerialized = adapter_grads("none"), adapter_grads(remat)
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in plain)
    for a, b in zip(plain, rematerialized, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
