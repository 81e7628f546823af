"""Building blocks: RMS norm, parameterised einsum, embedder, rotary embeddings, and the
contraction every weight matmul goes through (`contract`).

Parameter names (`scale`, `w`, `input_embedding`) match google-tunix's Gemma modules.
"""

from __future__ import annotations

import functools
import math
import string
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import DTypeLike


def contract(
    equation: str, x: jax.Array, w: jax.Array, *, dtype: DTypeLike, matmul_dtype: DTypeLike | None
) -> jax.Array:
    """``einsum(equation, x, w)`` in ``dtype``. With a ``matmul_dtype`` (bfloat16) both
    operands are rounded to it and the products summed in float32, in the forward pass
    and in both gradients: XLA then uses the CPU's bf16 dot instructions (AVX512-BF16,
    about twice the float32 rate) or an accelerator's bf16 units. ``equation`` names
    every axis (no ``...``), and every axis of ``x`` or ``w`` is in the other or the output."""
    if matmul_dtype is None or jnp.dtype(matmul_dtype) == jnp.dtype(dtype):
        return jnp.einsum(equation, x.astype(dtype), w.astype(dtype))
    return _mixed_einsum(equation, jnp.dtype(matmul_dtype).name, x, w).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _mixed_einsum(equation: str, matmul_dtype: str, x: jax.Array, w: jax.Array) -> jax.Array:
    return jnp.einsum(equation, x.astype(matmul_dtype), w.astype(matmul_dtype),
                      preferred_element_type=jnp.float32)  # fmt: skip


def _mixed_einsum_fwd(
    equation: str, matmul_dtype: str, x: jax.Array, w: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    low_x, low_w = x.astype(matmul_dtype), w.astype(matmul_dtype)
    out = jnp.einsum(equation, low_x, low_w, preferred_element_type=jnp.float32)
    # Empty arrays carry the operands' dtypes to the backward pass.
    return out, (low_x, low_w, jnp.zeros((0,), x.dtype), jnp.zeros((0,), w.dtype))


def _mixed_einsum_bwd(
    equation: str, matmul_dtype: str, residuals: tuple[jax.Array, ...], grad: jax.Array
) -> tuple[jax.Array, jax.Array]:
    low_x, low_w, x_dtype, w_dtype = residuals
    operands, out = equation.split("->")
    x_axes, w_axes = operands.split(",")
    low_grad = grad.astype(matmul_dtype)
    grad_x = jnp.einsum(f"{out},{w_axes}->{x_axes}", low_grad, low_w, preferred_element_type=jnp.float32)
    grad_w = jnp.einsum(f"{x_axes},{out}->{w_axes}", low_x, low_grad, preferred_element_type=jnp.float32)
    return grad_x.astype(x_dtype.dtype), grad_w.astype(w_dtype.dtype)


_mixed_einsum.defvjp(_mixed_einsum_fwd, _mixed_einsum_bwd)


def mixed_dot_general(matmul_dtype: DTypeLike) -> Any:
    """A ``dot_general`` for ``nnx.Linear`` that contracts as :func:`contract` does."""

    def dot_general(
        lhs: jax.Array, rhs: jax.Array, dimension_numbers: Any, precision: Any = None,
        preferred_element_type: Any = None, out_sharding: Any = None,
    ) -> jax.Array:  # fmt: skip
        del precision, preferred_element_type, out_sharding  # contract decides both dtypes
        (lhs_contract, rhs_contract), batch = dimension_numbers
        if tuple(lhs_contract) != (lhs.ndim - 1,) or tuple(rhs_contract) != (0,) or batch != ((), ()):
            raise ValueError(f"mixed_dot_general: only x[..., i] @ w[i, o], got {dimension_numbers}")
        return contract(linear_equation(lhs.ndim), lhs, rhs, dtype=lhs.dtype, matmul_dtype=matmul_dtype)

    return dot_general


def linear_equation(ndim: int) -> str:
    """``"abi,io->abo"`` for an input of ``ndim`` axes."""
    lead = string.ascii_lowercase[: ndim - 1]
    return f"{lead}i,io->{lead}o"


def head_equation(shape: Sequence[int]) -> str:
    """``"abd,vd->abv"``: hidden states of ``shape`` against the embedding table."""
    lead = string.ascii_lowercase[: len(shape) - 1]
    return f"{lead}d,vd->{lead}v"


def _normal(std: float) -> jax.nn.initializers.Initializer:
    return nnx.initializers.normal(stddev=std)


class RMSNorm(nnx.Module):
    """RMS norm whose stored scale `w` is applied as `1 + w` (zero init is the identity)."""

    def __init__(
        self, dim: int, *, eps: float = 1e-6, param_dtype: DTypeLike = jnp.float32, rngs: nnx.Rngs
    ):
        del rngs  # zero init needs no randomness; kept for a uniform constructor
        self.eps = eps
        self.scale = nnx.Param(jnp.zeros((dim,), dtype=param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        # Normalise in f32 whatever the compute dtype: bf16 variance loses too much.
        x32 = x.astype(jnp.float32)
        variance = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
        normed = x32 * jax.lax.rsqrt(variance + self.eps)
        return (normed * (1.0 + self.scale[...].astype(jnp.float32))).astype(x.dtype)


class Einsum(nnx.Module):
    """A weight `w` of a fixed shape contracted with the input by `equation`."""

    def __init__(
        self,
        equation: str,
        shape: tuple[int, ...],
        *,
        fan_in: int,
        dtype: DTypeLike = jnp.float32,
        param_dtype: DTypeLike = jnp.float32,
        matmul_dtype: DTypeLike | None = None,
        rngs: nnx.Rngs,
    ):
        self.equation = equation
        self.dtype = dtype
        self.matmul_dtype = matmul_dtype
        self.w = nnx.Param(_normal(1.0 / math.sqrt(fan_in))(rngs.params(), shape, param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        return contract(self.equation, x, self.w[...], dtype=self.dtype, matmul_dtype=self.matmul_dtype)


class Embedder(nnx.Module):
    """Token embedding, scaled by sqrt(embed_dim) on the way in and tied to the LM head."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        *,
        dtype: DTypeLike = jnp.float32,
        param_dtype: DTypeLike = jnp.float32,
        matmul_dtype: DTypeLike | None = None,
        rngs: nnx.Rngs,
    ):
        self.dtype = dtype
        self.matmul_dtype = matmul_dtype
        self.input_embedding = nnx.Param(
            _normal(1.0 / math.sqrt(embed_dim))(rngs.params(), (vocab_size, embed_dim), param_dtype)
        )

    def encode(self, tokens: jax.Array) -> jax.Array:
        table = self.input_embedding[...]
        x = jnp.take(table, tokens, axis=0).astype(self.dtype)
        # The scale is rounded to the compute dtype first, as the reference implementations do.
        return x * jnp.asarray(math.sqrt(table.shape[1]), dtype=self.dtype)

    def decode(self, hidden: jax.Array) -> jax.Array:
        return self.logits(hidden, self.input_embedding[...])

    def logits(self, hidden: jax.Array, table: jax.Array) -> jax.Array:
        """The LM head with ``table`` as an explicit argument (the loss differentiates it)."""
        return contract(head_equation(hidden.shape), hidden, table, dtype=self.dtype,
                        matmul_dtype=self.matmul_dtype)  # fmt: skip


def rope_tables(
    positions: jax.Array, *, head_dim: int, base: float, scale: float = 1.0
) -> tuple[jax.Array, jax.Array]:
    """sin and cos of shape [B, T, 1, head_dim // 2] for integer positions [B, T]."""
    if scale < 1.0:
        raise ValueError(f"RoPE scale factor must be >= 1, got {scale}")
    exponents = jnp.arange(0, head_dim // 2, dtype=jnp.float32) * 2.0 / head_dim
    inv_timescale = 1.0 / (base**exponents)
    angles = positions.astype(jnp.float32)[..., None] * inv_timescale / scale
    angles = angles[..., None, :]
    return jnp.sin(angles), jnp.cos(angles)


def apply_rope(x: jax.Array, sin: jax.Array, cos: jax.Array) -> jax.Array:
    """Rotates the two halves of the last axis of x [B, T, N, H] (the "rotate half" layout)."""
    x32 = x.astype(jnp.float32)
    first, second = jnp.split(x32, 2, axis=-1)
    rotated = jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return rotated.astype(x.dtype)
