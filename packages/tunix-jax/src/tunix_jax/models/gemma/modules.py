"""Attention, feed-forward and decoder block of Gemma 2 / Gemma 3.

Attribute names follow google-tunix (`q_einsum`, `kv_einsum` or `qkv_einsum`,
`attn_vec_einsum`, `_query_norm`, `_key_norm`, `mlp.gate_proj` ...) so the parameter
trees are interchangeable.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import DTypeLike

from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.layers import Einsum, RMSNorm, apply_rope, mixed_dot_general

LayerCache = dict[str, jax.Array]
Rope = tuple[jax.Array, jax.Array]

# Finite, so a row whose keys are all masked yields a uniform softmax rather than NaN.
_MASKED_LOGIT = -2.3819763e38


def sliding_window_mask(query_slots: jax.Array, key_slots: jax.Array, window: int) -> jax.Array:
    """[T, S] True where the key lies within `window` slots before or at the query."""
    distance = query_slots[:, None] - key_slots[None, :]
    return distance < window


def causal_mask(query_slots: jax.Array, key_slots: jax.Array) -> jax.Array:
    return key_slots[None, :] <= query_slots[:, None]


class Attention(nnx.Module):
    """Grouped-query attention with RoPE, optional QK-norm, sliding window and soft-cap."""

    def __init__(
        self,
        config: ModelConfig,
        layer: int,
        *,
        dtype: DTypeLike,
        param_dtype: DTypeLike,
        matmul_dtype: DTypeLike | None = None,
        rngs: nnx.Rngs,
    ):
        d, n, k, h = config.embed_dim, config.num_heads, config.num_kv_heads, config.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = n, k, h
        self.is_local = config.attention_kind(layer) == "local"
        self.window = config.sliding_window
        self.scale = config.query_pre_attn_scalar**-0.5
        self.softcap = config.attn_logit_softcap
        self.dtype = dtype
        common: dict[str, Any] = {
            "dtype": dtype, "param_dtype": param_dtype, "matmul_dtype": matmul_dtype, "rngs": rngs,
        }  # fmt: skip
        if config.uses_fused_qkv:
            self.qkv_einsum = Einsum("BTD,SNDH->SBTNH", (3, n, d, h), fan_in=d, **common)
        else:
            self.q_einsum = Einsum("BTD,NDH->BTNH", (n, d, h), fan_in=d, **common)
            self.kv_einsum = Einsum("BSD,CKDH->CBSKH", (2, k, d, h), fan_in=d, **common)
        self.attn_vec_einsum = Einsum("BTNH,NHD->BTD", (n, h, d), fan_in=n * h, **common)
        if config.use_qk_norm:
            self._query_norm = RMSNorm(
                h, eps=config.rms_norm_eps, param_dtype=param_dtype, rngs=rngs
            )
            self._key_norm = RMSNorm(h, eps=config.rms_norm_eps, param_dtype=param_dtype, rngs=rngs)
        self.use_qk_norm = config.use_qk_norm

    def _project(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        if hasattr(self, "qkv_einsum"):
            q, k, v = self.qkv_einsum(x)
        else:
            q = self.q_einsum(x)
            k, v = self.kv_einsum(x)
        return q, k, v

    def __call__(
        self,
        x: jax.Array,
        rope: Rope,
        attention_mask: jax.Array | None,
        cache: LayerCache | None,
        cache_index: jax.Array | None,
    ) -> tuple[jax.Array, LayerCache | None]:
        q, k, v = self._project(x)
        if self.use_qk_norm:
            q = self._query_norm(q)
            k = self._key_norm(k)
        q = apply_rope(q, *rope)
        k = apply_rope(k, *rope)

        seq_len = x.shape[1]
        new_cache = None
        if cache is not None:
            assert cache_index is not None, "a KV cache comes with its write index"
            # Write this step's keys/values in place at the shared write index.
            start = (0, cache_index, 0, 0)
            k = jax.lax.dynamic_update_slice(cache["k"], k.astype(cache["k"].dtype), start)
            v = jax.lax.dynamic_update_slice(cache["v"], v.astype(cache["v"].dtype), start)
            new_cache = {"k": k, "v": v}
            query_slots = cache_index + jnp.arange(seq_len)
        else:
            query_slots = jnp.arange(seq_len)
        key_slots = jnp.arange(k.shape[1])

        if attention_mask is None and cache is None and self.softcap is None:
            # Plain causal (+ window) attention: lets a fused kernel (cuDNN) build the mask.
            encoded = jax.nn.dot_product_attention(
                q,
                k.astype(q.dtype),
                v.astype(q.dtype),
                scale=self.scale,
                is_causal=True,
                local_window_size=(self.window - 1, 0) if self.is_local else None,
            )
        else:
            if attention_mask is None:
                mask = causal_mask(query_slots, key_slots)[None]
            else:
                mask = attention_mask
            if self.is_local:
                mask = mask & sliding_window_mask(query_slots, key_slots, self.window)[None]
            encoded = self._attend(q, k.astype(q.dtype), v.astype(q.dtype), mask)
        return self.attn_vec_einsum(encoded), new_cache

    def _attend(self, q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
        """Attention with an explicit [B, T, S] mask."""
        if self.softcap is None:
            return jax.nn.dot_product_attention(q, k, v, mask=mask[:, None], scale=self.scale)
        # Soft-capping sits between the logits and the softmax: no fused kernel offers it.
        b, t, n, h = q.shape
        groups = n // self.num_kv_heads
        q = q.reshape(b, t, self.num_kv_heads, groups, h) * jnp.asarray(self.scale, q.dtype)
        logits = jnp.einsum("btkgh,bskh->bkgts", q, k).astype(jnp.float32)
        logits = jnp.tanh(logits / self.softcap) * self.softcap
        logits = jnp.where(mask[:, None, None], logits, _MASKED_LOGIT)
        probs = jax.nn.softmax(logits, axis=-1).astype(v.dtype)
        encoded = jnp.einsum("bkgts,bskh->btkgh", probs, v)
        return encoded.reshape(b, t, n, h)


class FeedForward(nnx.Module):
    """Gated GELU (tanh approximation) MLP."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        dtype: DTypeLike,
        param_dtype: DTypeLike,
        matmul_dtype: DTypeLike | None = None,
        rngs: nnx.Rngs,
    ):
        d, f = config.embed_dim, config.hidden_dim
        common: dict[str, Any] = {
            "use_bias": False,
            "dtype": dtype,
            "param_dtype": param_dtype,
            "rngs": rngs,
        }
        if matmul_dtype is not None:
            common["dot_general"] = mixed_dot_general(matmul_dtype)
        self.gate_proj = nnx.Linear(d, f, **common)
        self.up_proj = nnx.Linear(d, f, **common)
        self.down_proj = nnx.Linear(f, d, **common)

    def __call__(self, x: jax.Array) -> jax.Array:
        gate = jax.nn.gelu(self.gate_proj(x), approximate=True)
        return self.down_proj(gate * self.up_proj(x))


class DecoderBlock(nnx.Module):
    """Pre- and post-norm around attention and around the MLP, each with a residual."""

    def __init__(
        self,
        config: ModelConfig,
        layer: int,
        *,
        dtype: DTypeLike,
        param_dtype: DTypeLike,
        matmul_dtype: DTypeLike | None = None,
        rngs: nnx.Rngs,
    ):
        def norm() -> RMSNorm:
            return RMSNorm(
                config.embed_dim, eps=config.rms_norm_eps, param_dtype=param_dtype, rngs=rngs
            )

        self.is_local = config.attention_kind(layer) == "local"
        self.pre_attention_norm = norm()
        self.attn = Attention(config, layer, dtype=dtype, param_dtype=param_dtype,
                              matmul_dtype=matmul_dtype, rngs=rngs)  # fmt: skip
        self.post_norm_name = config.post_attention_norm_name
        setattr(self, self.post_norm_name, norm())
        self.pre_ffw_norm = norm()
        self.mlp = FeedForward(config, dtype=dtype, param_dtype=param_dtype,
                               matmul_dtype=matmul_dtype, rngs=rngs)  # fmt: skip
        self.post_ffw_norm = norm()

    def __call__(
        self,
        x: jax.Array,
        rope: Rope,
        attention_mask: jax.Array | None,
        cache: LayerCache | None,
        cache_index: jax.Array | None,
    ) -> tuple[jax.Array, LayerCache | None]:
        attn_out, new_cache = self.attn(
            self.pre_attention_norm(x), rope, attention_mask, cache, cache_index
        )
        x = x + getattr(self, self.post_norm_name)(attn_out)
        x = x + self.post_ffw_norm(self.mlp(self.pre_ffw_norm(x)))
        return x, new_cache
