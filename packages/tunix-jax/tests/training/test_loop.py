"""The SFT train step: gradient accumulation over micro-batches leaves the update
unchanged, because the step divides once by the loss tokens of all its micro-batches."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from tunix_core.protocols import ModelSpec
from tunix_jax.backend import JaxBackend
from tunix_jax.training.loop import make_train_step


def test_gradient_accumulation_leaves_the_update_unchanged():
    # float32 matmuls on every machine: the two paths are compared to f32 rounding.
    model = JaxBackend().load(
        ModelSpec("tiny-gemma3", "random", options={"matmul_dtype": "float32"}), progress=print
    )
    graphdef, params_state, frozen = nnx.split(model.transformer, nnx.Param, ...)
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params_state)
    params = nnx.to_pure_dict(params_state)
    tx = optax.sgd(0.1)
    rng = np.random.default_rng(0)
    rows, length = 4, 10
    tokens = rng.integers(3, 200, size=(rows, length + 1))
    # Micro-batches with very different loss-token counts (1 and 2 rows in the first,
    # 8 and 9 in the second): a mean of per-micro-batch means would weigh them wrongly.
    weights = np.zeros((rows, length), np.float32)
    for row, count in enumerate((1, 2, 8, 9)):
        weights[row, length - count:] = 1.0
    batch = {
        "inputs": tokens[:, :-1].astype(np.int32),
        "targets": tokens[:, 1:].astype(np.int32),
        "positions": np.tile(np.arange(length, dtype=np.int32), (rows, 1)),
        "weights": weights,
        "segment_ids": np.ones((rows, length), np.int32),
    }
    step = jax.jit(make_train_step(graphdef, template, tx, packing=False, chunk_tokens=4, table_grad=True))

    def run(accum: int):
        batches = {k: jnp.asarray(v.reshape(accum, -1, *v.shape[1:])) for k, v in batch.items()}
        return step(params, tx.init(params), frozen, batches)

    whole, _, whole_metrics = run(1)
    split, _, split_metrics = run(2)
    assert float(whole_metrics["tokens"]) == rows * length == float(split_metrics["tokens"])
    assert float(split_metrics["loss"]) == pytest.approx(float(whole_metrics["loss"]), abs=1e-5)
    assert float(split_metrics["grad_norm"]) == pytest.approx(float(whole_metrics["grad_norm"]), rel=1e-5)
    for got, want in zip(jax.tree.leaves(split), jax.tree.leaves(whole), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
