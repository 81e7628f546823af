"""Reading a Hugging Face Gemma folder (config.json + *.safetensors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.errors import WeightsNotFoundError, WeightsShapeError
from tunix_jax.models.gemma.params import (
    ParamPath,
    SourceTensor,
    check_source_shape,
    convert_linear_layout,
)

# Text-only and multimodal checkpoints nest the decoder under different prefixes.
_PREFIXES = ("model.", "model.language_model.", "language_model.model.")

BLOCK_TENSORS = {
    "q": "self_attn.q_proj",
    "k": "self_attn.k_proj",
    "v": "self_attn.v_proj",
    "o": "self_attn.o_proj",
    "gate": "mlp.gate_proj",
    "up": "mlp.up_proj",
    "down": "mlp.down_proj",
    "pre_attn_norm": "input_layernorm",
    "post_attn_norm": "post_attention_layernorm",
    "pre_ffw_norm": "pre_feedforward_layernorm",
    "post_ffw_norm": "post_feedforward_layernorm",
    "q_norm": "self_attn.q_norm",
    "k_norm": "self_attn.k_norm",
}

# config.json key -> ModelConfig attribute, compared when the key is present.
_CONFIG_KEYS = {
    "num_hidden_layers": "num_layers",
    "hidden_size": "embed_dim",
    "intermediate_size": "hidden_dim",
    "num_attention_heads": "num_heads",
    "num_key_value_heads": "num_kv_heads",
    "head_dim": "head_dim",
    "vocab_size": "vocab_size",
}


def _check_config(directory: Path, config: ModelConfig) -> None:
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise WeightsNotFoundError(f"{config_file}: not found (a Hugging Face folder needs one)")
    hf = json.loads(config_file.read_text())
    hf = hf.get("text_config", hf)
    for hf_key, attr in _CONFIG_KEYS.items():
        if hf_key in hf and int(hf[hf_key]) != getattr(config, attr):
            raise WeightsShapeError(
                f"{config_file}: {hf_key}={hf[hf_key]} but model preset {config.name!r} has "
                f"{attr}={getattr(config, attr)}"
            )


def read_params(
    directory: str | os.PathLike[str], config: ModelConfig
) -> dict[ParamPath, SourceTensor]:
    """Flat Tunix-layout parameters (float32) from a Hugging Face safetensors folder."""
    from safetensors import safe_open

    directory = Path(directory)
    if not directory.is_dir():
        raise WeightsNotFoundError(f"safetensors folder not found: {directory}")
    _check_config(directory, config)
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise WeightsNotFoundError(f"{directory}: no *.safetensors files")
    location: dict[str, Path] = {}
    for file in files:
        with safe_open(file, framework="flax") as handle:
            location.update(dict.fromkeys(handle.keys(), file))
    prefix = next((p for p in _PREFIXES if f"{p}embed_tokens.weight" in location), None)
    if prefix is None:
        raise WeightsNotFoundError(
            f"{directory}: no embedding tensor (looked for "
            f"{', '.join(p + 'embed_tokens.weight' for p in _PREFIXES)})"
        )

    def load(name: str, shape: tuple[int, ...]) -> np.ndarray:
        file = location.get(name)
        if file is None:
            raise WeightsNotFoundError(
                f"{directory}: no tensor {name!r} (model preset {config.name!r})"
            )
        # The flax framework reads bf16 too, which numpy alone cannot.
        with safe_open(file, framework="flax") as handle:
            value = np.asarray(handle.get_tensor(name), dtype=np.float32)
        check_source_shape(str(file), name, value, shape, config)
        return value

    return convert_linear_layout(
        load,
        embedding=f"{prefix}embed_tokens.weight",
        final_norm=f"{prefix}norm.weight",
        block_tensor=lambda layer, role: f"{prefix}layers.{layer}.{BLOCK_TENSORS[role]}.weight",
        config=config,
    )
