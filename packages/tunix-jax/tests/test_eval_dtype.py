"""``eval.dtype: bfloat16``: the tiny model evaluated with its parameters cast to bf16, as
the graders' loader casts them, gives logits that differ from f32 by bf16 rounding only."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_core.protocols import ModelSpec
from tunix_jax.backend import JaxBackend, _as_loaded
from tunix_jax.weights.loading import load_model


def test_bfloat16_evaluation_differs_from_f32_within_bf16_rounding() -> None:
    f32_model, _ = load_model("tiny-gemma3", "random", dtype=jnp.float32)
    # What evaluating a just-trained f32 model with eval.dtype bfloat16 loads.
    bf16_model = _as_loaded(f32_model, ModelSpec("tiny-gemma3", "random", dtype="bfloat16"))
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(nnx.state(bf16_model, nnx.Param))}
    assert dtypes == {jnp.dtype(jnp.bfloat16)}
    tokens = jnp.array([[2, 17, 99, 5, 42, 7, 300, 11]])
    positions = jnp.arange(tokens.shape[1])[None]
    exact = np.asarray(f32_model(tokens, positions)[0], dtype=np.float32)
    rounded = np.asarray(bf16_model(tokens, positions)[0], dtype=np.float32)
    difference = np.abs(exact - rounded)
    assert difference.max() > 0  # the cast changed something
    # bf16 keeps 8 significant bits (relative step 2**-8); through the tiny model's layers
    # the error stays within a few such steps of the logits' scale (about 5 when written).
    assert difference.max() <= 16 * 2.0**-8 * np.abs(exact).max()


def test_a_bfloat16_model_generates() -> None:
    model = JaxBackend().load(ModelSpec("tiny-gemma3", "random", dtype="bfloat16"), progress=print)
    (completion,) = model.generate(["<start_of_turn>user\nHi<end_of_turn>\n"], max_new_tokens=4)
    assert isinstance(completion, str)
