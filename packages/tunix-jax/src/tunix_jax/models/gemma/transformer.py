"""The Gemma decoder-only transformer (Flax NNX), parameter tree as in google-tunix."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import DTypeLike

from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.layers import Embedder, RMSNorm, rope_tables
from tunix_jax.models.gemma.modules import DecoderBlock, Rope

# {"index": int32[] next write slot, "layers": [{"k": [B,S,K,H], "v": [B,S,K,H]}, ...]}
Cache = dict[str, Any]

REMAT_POLICIES = {
    "none": None,
    "block": jax.checkpoint_policies.nothing_saveable,
    # Keep matmul outputs, recompute the cheap elementwise work (norms, rope, softmax).
    "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def _rematerialized(
    block: DecoderBlock,
    policy: Any,
    x: jax.Array,
    rope: Rope,
    attention_mask: jax.Array | None,
) -> jax.Array:
    """``block(x)`` recomputed in the backward pass, as a pure function of its state.

    Not ``nnx.remat``: that writes the block's variables back after the call, and with
    LoRA the frozen weights belong to an outer trace (the train step differentiates only
    the adapters), which nnx refuses ("Cannot mutate Param from a different trace level").
    A block without a cache changes no state, so there is nothing to write back.
    """
    graphdef, state = nnx.split(block)

    def run(state: nnx.State[Any, Any], x: jax.Array) -> jax.Array:
        out, _ = nnx.merge(graphdef, state)(x, rope, attention_mask, None, None)
        return out

    result: jax.Array = jax.checkpoint(run, policy=policy)(state, x)
    return result


class Transformer(nnx.Module):
    """Gemma 2 / Gemma 3 text transformer with a tied LM head."""

    def __init__(
        self,
        config: ModelConfig,
        *,
        rngs: nnx.Rngs,
        dtype: DTypeLike = jnp.float32,
        param_dtype: DTypeLike = jnp.float32,
        matmul_dtype: DTypeLike | None = None,
        remat: str = "none",
    ):
        if remat not in REMAT_POLICIES:
            raise ValueError(f"remat must be one of {sorted(REMAT_POLICIES)}, got {remat!r}")
        self.config = config
        self.dtype = dtype
        self.matmul_dtype = matmul_dtype
        self.remat = remat
        self.embedder = Embedder(config.vocab_size, config.embed_dim, dtype=dtype,
                                 param_dtype=param_dtype, matmul_dtype=matmul_dtype, rngs=rngs)  # fmt: skip
        self.layers = nnx.List(
            [
                DecoderBlock(
                    config, i, dtype=dtype, param_dtype=param_dtype, matmul_dtype=matmul_dtype, rngs=rngs
                )
                for i in range(config.num_layers)
            ]
        )
        self.final_norm = RMSNorm(
            config.embed_dim, eps=config.rms_norm_eps, param_dtype=param_dtype, rngs=rngs
        )

    def init_cache(self, batch_size: int, length: int, dtype: DTypeLike | None = None) -> Cache:
        """An empty KV cache of `length` slots per sequence."""
        cfg = self.config
        shape = (batch_size, length, cfg.num_kv_heads, cfg.head_dim)
        dtype = dtype or self.dtype
        return {
            "index": jnp.zeros((), jnp.int32),
            "layers": [
                {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}
                for _ in range(cfg.num_layers)
            ],
        }

    def _rope(self, positions: jax.Array) -> dict[str, tuple[jax.Array, jax.Array]]:
        cfg = self.config
        return {
            "local": rope_tables(
                positions,
                head_dim=cfg.head_dim,
                base=cfg.local_rope_base,
                scale=cfg.local_rope_scale,
            ),
            "global": rope_tables(
                positions,
                head_dim=cfg.head_dim,
                base=cfg.global_rope_base,
                scale=cfg.global_rope_scale,
            ),
        }

    def _run_layers(
        self,
        tokens: jax.Array,
        positions: jax.Array,
        attention_mask: jax.Array | None,
        cache: Cache | None,
    ) -> tuple[jax.Array, Cache | None]:
        x = self.embedder.encode(tokens)
        ropes = self._rope(positions)
        index = None if cache is None else cache["index"]
        new_layers = []
        for i, block in enumerate(self.layers):
            rope = ropes["local" if block.is_local else "global"]
            layer_cache = None if cache is None else cache["layers"][i]
            if self.remat != "none" and cache is None:
                x = _rematerialized(block, REMAT_POLICIES[self.remat], x, rope, attention_mask)
            else:
                x, layer_cache = block(x, rope, attention_mask, layer_cache, index)
            new_layers.append(layer_cache)
        new_cache = None
        if cache is not None:
            new_cache = {"index": cache["index"] + tokens.shape[1], "layers": new_layers}
        return self.final_norm(x), new_cache

    def __call__(
        self,
        tokens: jax.Array,
        positions: jax.Array,
        attention_mask: jax.Array | None = None,
        cache: Cache | None = None,
        *,
        last_only: bool = False,
    ) -> tuple[jax.Array, Cache | None]:
        """Logits [B, T, V] for tokens [B, T] at positions [B, T].

        attention_mask: bool [B, T, S] (S = T without a cache, the cache length with one);
        None means causal. Local layers always add their sliding window. With a cache the
        new keys/values are written at `cache["index"]` and the index advances by T.
        last_only returns [B, 1, V] for the last position only: a prefill needs no more, and
        the LM head over a 262k vocabulary costs more than the rest of the model.
        """
        hidden, new_cache = self._run_layers(tokens, positions, attention_mask, cache)
        if last_only:
            hidden = hidden[:, -1:]
        return self.logits_from_hidden(hidden), new_cache

    def hidden_states(
        self, tokens: jax.Array, positions: jax.Array, attention_mask: jax.Array | None = None
    ) -> jax.Array:
        """[B, T, D] after the final norm, before the LM head."""
        hidden, _ = self._run_layers(tokens, positions, attention_mask, None)
        return hidden

    def logits_from_hidden(self, hidden: jax.Array) -> jax.Array:
        logits = self.embedder.decode(hidden)
        cap = self.config.final_logit_softcap
        if cap is not None:
            logits = jnp.tanh(logits / cap) * cap
        return logits
