"""Writing a merged Hugging Face checkpoint: the inverse of `safetensors_io.read_params`.

The folder holds `config.json` (Gemma3ForCausalLM / Gemma2ForCausalLM), one
`model.safetensors` with torch-style tensors (Linear weights [out, in], tied LM head),
`generation_config.json`, and the SentencePiece `tokenizer.model` with a
`tokenizer_config.json`, so `transformers.AutoModelForCausalLM.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)` load it offline, and so does
`load_model(preset, "safetensors:DIR")`. Hugging Face's Gemma norms apply `1 + w`, like
ours, so norm scales are written as they are.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np
import sentencepiece as spm

from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.errors import WeightsNotFoundError
from tunix_jax.models.gemma.params import ParamPath, check_source_shape, expected_shapes, path_str
from tunix_jax.models.gemma.tokenizer import Tokenizer
from tunix_jax.weights.safetensors_io import BLOCK_TENSORS as HF_BLOCK_TENSORS

CONFIG_FILENAME = "config.json"
WEIGHTS_FILENAME = "model.safetensors"
GENERATION_CONFIG_FILENAME = "generation_config.json"
TOKENIZER_CONFIG_FILENAME = "tokenizer_config.json"

HF_DTYPES: dict[str, Any] = {
    "float32": np.dtype(np.float32),
    "bfloat16": np.dtype(jnp.bfloat16),
    "float16": np.dtype(np.float16),
}

_LAYER_KINDS = {"local": "sliding_attention", "global": "full_attention"}


def flat_params(params: Mapping[Any, Any], config: ModelConfig) -> dict[ParamPath, np.ndarray]:
    """Every parameter of `config` from a nested module-layout tree, as float32, shape-checked."""
    flat: dict[ParamPath, np.ndarray] = {}
    for path, shape in expected_shapes(config).items():
        node: Any = params
        for part in path:
            # Layer indices are ints in a live model's tree and strings once serialised.
            if not isinstance(node, Mapping) or (part not in node and str(part) not in node):
                raise WeightsNotFoundError(
                    f"parameter tree has no {path_str(path)} (model preset {config.name!r})"
                )
            node = node[part] if part in node else node[str(part)]
        value = np.asarray(node, dtype=np.float32)
        check_source_shape("parameter tree", path_str(path), value, shape, config)
        flat[path] = value
    return flat


def linear_layout(
    params: Mapping[Any, Any],
    config: ModelConfig,
    *,
    embedding: str,
    final_norm: str,
    block_tensor: Callable[[int, str], str],
    norm_offset: float = 0.0,
) -> dict[str, np.ndarray]:
    """The inverse of `params.convert_linear_layout`: float32 torch-style tensors (Linear
    weights [out, in]) named by `embedding`, `final_norm` and `block_tensor(layer, role)`,
    with `norm_offset` added to every norm scale (1 for llama.cpp, which stores 1 + w)."""
    flat = flat_params(params, config)
    d, n, h = config.embed_dim, config.num_heads, config.head_dim

    def heads(w: np.ndarray) -> np.ndarray:
        # [count, D, H] -> [count * H, D]: each head is a block of rows of the Linear weight.
        return w.transpose(0, 2, 1).reshape(-1, d)

    out = {
        embedding: flat["embedder", "input_embedding"],
        final_norm: flat["final_norm", "scale"] + norm_offset,
    }
    for i in range(config.num_layers):
        attn: ParamPath = ("layers", i, "attn")
        if config.uses_fused_qkv:
            q, key, value = flat[(*attn, "qkv_einsum", "w")]
        else:
            q = flat[(*attn, "q_einsum", "w")]
            key, value = flat[(*attn, "kv_einsum", "w")]
        vec = flat[(*attn, "attn_vec_einsum", "w")]
        tensors = {
            "q": heads(q),
            "k": heads(key),
            "v": heads(value),
            "o": vec.transpose(2, 0, 1).reshape(d, n * h),
            "gate": flat["layers", i, "mlp", "gate_proj", "kernel"].T,
            "up": flat["layers", i, "mlp", "up_proj", "kernel"].T,
            "down": flat["layers", i, "mlp", "down_proj", "kernel"].T,
        }
        norms: dict[str, tuple[str, ...]] = {
            "pre_attn_norm": ("pre_attention_norm",),
            "post_attn_norm": (config.post_attention_norm_name,),
            "pre_ffw_norm": ("pre_ffw_norm",),
            "post_ffw_norm": ("post_ffw_norm",),
        }
        if config.use_qk_norm:
            norms |= {"q_norm": ("attn", "_query_norm"), "k_norm": ("attn", "_key_norm")}
        for role, module in norms.items():
            tensors[role] = flat[("layers", i, *module, "scale")] + norm_offset
        for role, value in tensors.items():
            out[block_tensor(i, role)] = np.ascontiguousarray(value)
    return out


def hf_tensors(params: Mapping[Any, Any], config: ModelConfig) -> dict[str, np.ndarray]:
    """The parameters under Hugging Face Gemma names and layout (float32); the LM head is
    tied to the embedding, so it has no tensor of its own."""
    # The reader's names, so that writing and reading cannot drift apart.
    return linear_layout(
        params,
        config,
        embedding="model.embed_tokens.weight",
        final_norm="model.norm.weight",
        block_tensor=lambda layer, role: f"model.layers.{layer}.{HF_BLOCK_TENSORS[role]}.weight",
    )


def _rope(base: float, scale: float) -> dict[str, Any]:
    # Linear scaling divides positions by `factor`, as `rope_tables` divides them by `scale`.
    if scale == 1.0:
        return {"rope_type": "default", "rope_theta": base}
    return {"rope_type": "linear", "factor": scale, "rope_theta": base}


def _number(value: float) -> int | float:
    # transformers types query_pre_attn_scalar as int and validates config fields strictly.
    return int(value) if float(value).is_integer() else value


def hf_config(
    config: ModelConfig, tokenizer: Tokenizer, *, dtype: str = "float32"
) -> dict[str, Any]:
    """config.json for transformers' Gemma3ForCausalLM (Gemma 3) or Gemma2ForCausalLM.

    RoPE is written twice: `rope_parameters` (transformers 5) and the keys transformers 4
    reads (`rope_theta`, `rope_local_base_freq`, `rope_scaling`; the latter describes
    global layers only, so a local scale other than 1 needs transformers 5).
    """
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} pieces but model preset "
            f"{config.name!r} has vocab_size={config.vocab_size}"
        )
    local = _rope(config.local_rope_base, config.local_rope_scale)
    full = _rope(config.global_rope_base, config.global_rope_scale)
    data: dict[str, Any] = {
        "vocab_size": config.vocab_size,
        "hidden_size": config.embed_dim,
        "intermediate_size": config.hidden_dim,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": config.max_seq_len,
        "rms_norm_eps": config.rms_norm_eps,
        "query_pre_attn_scalar": _number(config.query_pre_attn_scalar),
        "sliding_window": config.sliding_window,
        "layer_types": [_LAYER_KINDS[config.attention_kind(i)] for i in range(config.num_layers)],
        "attn_logit_softcapping": config.attn_logit_softcap,
        "final_logit_softcapping": config.final_logit_softcap,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "tie_word_embeddings": True,
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": tokenizer.eos_id,
        "pad_token_id": tokenizer.pad_id,
        "torch_dtype": dtype,
        "use_cache": True,
        "rope_theta": config.global_rope_base,
        "rope_scaling": (
            None
            if config.global_rope_scale == 1.0
            else {"rope_type": "linear", "factor": config.global_rope_scale}
        ),
    }
    if config.family == "gemma3":
        data["rope_parameters"] = {"sliding_attention": local, "full_attention": full}
        data["rope_local_base_freq"] = config.local_rope_base
        return {"architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", **data}
    if local != full:
        raise ValueError(
            f"model preset {config.name!r}: Hugging Face's Gemma 2 has one RoPE for every "
            f"layer, but local layers use {local} and global layers {full}"
        )
    data["rope_parameters"] = full
    return {"architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", **data}


def tokenizer_config(tokenizer: Tokenizer, config: ModelConfig) -> dict[str, Any]:
    """tokenizer_config.json: transformers builds its GemmaTokenizer from tokenizer.model."""
    sp = spm.SentencePieceProcessor(model_proto=tokenizer.model_proto)
    return {
        "tokenizer_class": "GemmaTokenizer",
        "bos_token": sp.IdToPiece(sp.bos_id()),
        "eos_token": sp.IdToPiece(sp.eos_id()),
        "unk_token": sp.IdToPiece(sp.unk_id()),
        "pad_token": sp.IdToPiece(sp.pad_id()),
        # Gemma prompts start with <bos>, as `Tokenizer.encode(add_bos=True)` gives.
        "add_bos_token": True,
        "add_eos_token": False,
        # Decode exactly as SentencePiece does (no removal of spaces before punctuation).
        "clean_up_tokenization_spaces": False,
        "model_max_length": config.max_seq_len,
    }


def write_hf_checkpoint(
    params: Mapping[Any, Any],
    config: ModelConfig,
    tokenizer: Tokenizer,
    directory: str | os.PathLike[str],
    *,
    dtype: str = "float32",
) -> Path:
    """Write a Hugging Face folder for the module-layout `params` of `config`, in `dtype`
    ("float32", "bfloat16" or "float16"). `directory` must be new or empty."""
    from safetensors.numpy import save_file

    if dtype not in HF_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(HF_DTYPES)}, got {dtype!r}")
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(f"{directory}: not empty; a Hugging Face export needs a new folder")
    model_config = hf_config(config, tokenizer, dtype=dtype)
    tensors = {
        name: np.ascontiguousarray(value.astype(HF_DTYPES[dtype]))
        for name, value in hf_tensors(params, config).items()
    }
    directory.mkdir(parents=True, exist_ok=True)
    # The framework tag transformers writes, and 4.x checks on loading.
    save_file(tensors, directory / WEIGHTS_FILENAME, metadata={"format": "pt"})
    generation = {
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": list(tokenizer.stop_ids),
        "pad_token_id": tokenizer.pad_id,
    }
    for name, data in (
        (CONFIG_FILENAME, model_config),
        (GENERATION_CONFIG_FILENAME, generation),
        (TOKENIZER_CONFIG_FILENAME, tokenizer_config(tokenizer, config)),
    ):
        (directory / name).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tokenizer.save(directory)
    return directory
