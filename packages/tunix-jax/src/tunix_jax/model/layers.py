"""Building blocks: RMS norm, parameterised einsum, embedder, rotary embeddings.

Parameter names (`scale`, `w`, `input_embedding`) match google-tunix's Gemma modules.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import DTypeLike


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
        rngs: nnx.Rngs,
    ):
        self.equation = equation
        self.dtype = dtype
        self.w = nnx.Param(_normal(1.0 / math.sqrt(fan_in))(rngs.params(), shape, param_dtype))

    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.einsum(self.equation, x.astype(self.dtype), self.w[...].astype(self.dtype))


class Embedder(nnx.Module):
    """Token embedding, scaled by sqrt(embed_dim) on the way in and tied to the LM head."""

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int,
        *,
        dtype: DTypeLike = jnp.float32,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.dtype = dtype
        self.input_embedding = nnx.Param(
            _normal(1.0 / math.sqrt(embed_dim))(rngs.params(), (vocab_size, embed_dim), param_dtype)
        )

    def encode(self, tokens: jax.Array) -> jax.Array:
        table = self.input_embedding[...]
        x = jnp.take(table, tokens, axis=0).astype(self.dtype)
        # The scale is rounded to the compute dtype first, as the reference implementations do.
        return x * jnp.asarray(math.sqrt(table.shape[1]), dtype=self.dtype)

    def decode(self, hidden: jax.Array) -> jax.Array:
        table = self.input_embedding[...].astype(self.dtype)
        return jnp.einsum("...d,vd->...v", hidden.astype(self.dtype), table)


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
