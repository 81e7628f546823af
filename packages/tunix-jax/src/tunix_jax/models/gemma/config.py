"""Gemma 2 / Gemma 3 architecture presets.

The numbers follow the published checkpoints (Hugging Face config.json files) and
google-tunix's `ModelConfig` factories, so a checkpoint written for a preset here loads
into `tunix.models.gemma3.model.Gemma3` / `tunix.models.gemma.model.Gemma` unchanged.
This module imports no JAX so the CLI and the config layer can use it freely.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Literal

from tunix_core.errors import ConfigError

Family = Literal["gemma2", "gemma3"]
AttentionKind = Literal["local", "global"]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape and numerics of one Gemma decoder-only transformer."""

    name: str
    family: Family
    num_layers: int
    vocab_size: int
    embed_dim: int
    hidden_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    # Layer i uses attention_pattern[i % len(attention_pattern)].
    attention_pattern: tuple[AttentionKind, ...]
    sliding_window: int
    local_rope_base: float = 10_000.0
    global_rope_base: float = 10_000.0
    local_rope_scale: float = 1.0
    global_rope_scale: float = 1.0
    # Queries are multiplied by query_pre_attn_scalar ** -0.5.
    query_pre_attn_scalar: float = 256.0
    attn_logit_softcap: float | None = None
    final_logit_softcap: float | None = None
    use_qk_norm: bool = False
    rms_norm_eps: float = 1e-6
    max_seq_len: int = 32_768
    # Rows of the embedding in Google's upstream (Kaggle Flax) checkpoints, when they pad
    # the vocabulary beyond the tokenizer's (Gemma 2: 256,128 for 256,000 tokens); None
    # means vocab_size. The padding rows are dropped on load and written as zeros on export.
    upstream_vocab_size: int | None = None

    def __post_init__(self) -> None:
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"model {self.name}: num_heads={self.num_heads} is not a multiple of "
                f"num_kv_heads={self.num_kv_heads}"
            )
        if self.head_dim % 2:
            raise ConfigError(f"model {self.name}: head_dim must be even for RoPE")
        if not self.attention_pattern or set(self.attention_pattern) - {"local", "global"}:
            raise ConfigError(f"model {self.name}: attention_pattern must hold 'local'/'global'")
        if self.upstream_vocab_size is not None and self.upstream_vocab_size < self.vocab_size:
            raise ConfigError(f"model {self.name}: upstream_vocab_size is below vocab_size")

    def attention_kind(self, layer: int) -> AttentionKind:
        return self.attention_pattern[layer % len(self.attention_pattern)]

    @property
    def uses_fused_qkv(self) -> bool:
        """Tunix stores one `qkv_einsum` when every query head has its own KV head."""
        return self.num_heads == self.num_kv_heads

    @property
    def checkpoint_vocab_size(self) -> int:
        """Embedding rows of an upstream-layout checkpoint of this architecture."""
        return self.upstream_vocab_size or self.vocab_size

    @property
    def post_attention_norm_name(self) -> str:
        # google-tunix names this norm differently in its two Gemma modules.
        return "post_attention_norm" if self.family == "gemma3" else "post_attn_norm"

    def num_params(self, *, include_embedding: bool = True) -> int:
        """Parameter count of the model (the LM head is tied to the embedding)."""
        d, h = self.embed_dim, self.head_dim
        attn = d * h * (self.num_heads * 2 + self.num_kv_heads * 2)
        mlp = 3 * d * self.hidden_dim
        norms = 4 * d + (2 * h if self.use_qk_norm else 0)
        total = self.num_layers * (attn + mlp + norms) + d
        if include_embedding:
            total += self.vocab_size * d
        return total

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["attention_pattern"] = list(self.attention_pattern)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown model config keys: {', '.join(unknown)}")
        values = dict(data)
        values["attention_pattern"] = tuple(values["attention_pattern"])
        return cls(**values)


_GEMMA3_PATTERN: tuple[AttentionKind, ...] = ("local",) * 5 + ("global",)
_GEMMA2_PATTERN: tuple[AttentionKind, ...] = ("local", "global")


def _gemma3(name: str, **kwargs: Any) -> ModelConfig:
    defaults: dict[str, Any] = {
        "family": "gemma3",
        "vocab_size": 262_144,
        "num_heads": 4,
        "num_kv_heads": 1,
        "head_dim": 256,
        "attention_pattern": _GEMMA3_PATTERN,
        "sliding_window": 512,
        "local_rope_base": 10_000.0,
        "global_rope_base": 1_000_000.0,
        "query_pre_attn_scalar": 256.0,
        "use_qk_norm": True,
    }
    defaults.update(kwargs)
    return ModelConfig(name=name, **defaults)


def _gemma2(name: str, **kwargs: Any) -> ModelConfig:
    defaults: dict[str, Any] = {
        "family": "gemma2",
        "vocab_size": 256_000,
        "attention_pattern": _GEMMA2_PATTERN,
        "sliding_window": 4096,
        "attn_logit_softcap": 50.0,
        "final_logit_softcap": 30.0,
        "max_seq_len": 8192,
    }
    defaults.update(kwargs)
    return ModelConfig(name=name, **defaults)


_TINY_SHAPES: dict[str, Any] = {
    "vocab_size": 512,
    "embed_dim": 64,
    "hidden_dim": 128,
    "num_heads": 4,
    "num_kv_heads": 2,
    "head_dim": 16,
    "sliding_window": 8,
    "query_pre_attn_scalar": 16.0,
    "max_seq_len": 512,
}

_BASE_PRESETS: dict[str, ModelConfig] = {
    "gemma3-270m": _gemma3("gemma3-270m", num_layers=18, embed_dim=640, hidden_dim=2048),
    "gemma3-1b": _gemma3("gemma3-1b", num_layers=26, embed_dim=1152, hidden_dim=6912),
    "gemma2-2b": _gemma2(
        "gemma2-2b",
        num_layers=26,
        embed_dim=2304,
        hidden_dim=9216,
        num_heads=8,
        num_kv_heads=4,
        head_dim=256,
        query_pre_attn_scalar=256.0,
        upstream_vocab_size=256_128,
    ),
    # Tiny shapes for tests: a full local/global cycle and a short window so masks matter.
    "tiny-gemma3": _gemma3("tiny-gemma3", num_layers=6, **_TINY_SHAPES),
    "tiny-gemma2": _gemma2("tiny-gemma2", num_layers=4, **_TINY_SHAPES),
}

# Instruction-tuned and pretrained checkpoints share an architecture.
_ALIASES: dict[str, str] = {
    f"{base}-{variant}": base
    for base in ("gemma3-270m", "gemma3-1b", "gemma2-2b")
    for variant in ("it", "pt")
}

PRESETS: tuple[str, ...] = tuple(sorted([*_BASE_PRESETS, *_ALIASES]))


class UnknownPresetError(ConfigError, ValueError):
    """A model preset name that is not defined; the message lists the known ones."""


def base_preset(preset: str) -> str:
    """The architecture a preset name stands for (`gemma3-1b-it` -> `gemma3-1b`)."""
    return _ALIASES.get(preset, preset)


def get_config(preset: str) -> ModelConfig:
    """The architecture of a named preset; aliases (`-it`, `-pt`) resolve to their base."""
    base = base_preset(preset)
    if base in _BASE_PRESETS:
        return dataclasses.replace(_BASE_PRESETS[base], name=preset)
    close = difflib.get_close_matches(preset, PRESETS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownPresetError(
        f"unknown model preset {preset!r}; known presets: {', '.join(PRESETS)}.{hint}"
    )
