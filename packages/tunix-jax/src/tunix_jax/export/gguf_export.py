"""Writing a GGUF file (llama.cpp's format) from module-layout parameters: the inverse of
`gguf_io.read_params` and `gguf_io.tokenizer_proto`.

The conventions are llama.cpp's for Gemma, as in the Gemma 3 270M GGUF the default
weights come from: tensor names `token_embd`, `blk.N.attn_q`, ...; norm scales stored as
`1 + w`; the SentencePiece vocabulary as `tokenizer.ggml.*` metadata, with the turn
markers flagged as control tokens and whitespace-only pieces spelt with spaces.
llama.cpp derives the query scale, the local RoPE base and the attention pattern from the
architecture, so a config that differs from what it derives is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunix_jax.export.hf_export import linear_layout
from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.tokenizer import (
    END_OF_TURN,
    START_OF_TURN,
    Tokenizer,
    sentencepiece_model_pb2,
)
from tunix_jax.weights.gguf_io import BLOCK_TENSORS as GGUF_BLOCK_TENSORS

if TYPE_CHECKING:
    import gguf

GGUF_DTYPES = ("float32", "float16")

# What llama.cpp assumes for each architecture rather than reading from the file.
_LLAMA_CPP_PATTERN = {"gemma3": ("local",) * 5 + ("global",), "gemma2": ("local", "global")}
_LLAMA_CPP_LOCAL_ROPE_BASE = 10_000.0


def gguf_tensors(params: Mapping[Any, Any], config: ModelConfig) -> dict[str, np.ndarray]:
    """The parameters under llama.cpp's names and layout (float32, norms as 1 + w)."""
    # The reader's names, so that writing and reading cannot drift apart.
    return linear_layout(
        params,
        config,
        embedding="token_embd.weight",
        final_norm="output_norm.weight",
        block_tensor=lambda layer, role: f"blk.{layer}.{GGUF_BLOCK_TENSORS[role]}.weight",
        norm_offset=1.0,
    )


def _check_expressible(config: ModelConfig) -> None:
    problems = []
    pattern = _LLAMA_CPP_PATTERN[config.family]
    kinds = [config.attention_kind(i) for i in range(config.num_layers)]
    if kinds != [pattern[i % len(pattern)] for i in range(config.num_layers)]:
        problems.append(f"the attention pattern {config.attention_pattern} (llama.cpp: {pattern})")
    if config.query_pre_attn_scalar not in (config.head_dim, config.embed_dim // config.num_heads):
        problems.append(
            f"query_pre_attn_scalar={config.query_pre_attn_scalar} (llama.cpp scales queries by "
            "head_dim or embed_dim / num_heads)"
        )
    if config.family == "gemma3" and config.local_rope_base != _LLAMA_CPP_LOCAL_ROPE_BASE:
        problems.append(f"local_rope_base={config.local_rope_base} (llama.cpp: 10000)")
    if config.local_rope_scale != 1.0 or (
        config.family == "gemma2" and config.local_rope_base != config.global_rope_base
    ):
        problems.append("a RoPE on local layers other than llama.cpp's")
    if problems:
        raise ValueError(
            f"model preset {config.name!r} cannot be written as GGUF: llama.cpp cannot express "
            + "; ".join(problems)
        )


def _add_vocabulary(writer: gguf.GGUFWriter, tokenizer: Tokenizer) -> None:
    """The SentencePiece vocabulary as llama.cpp writes it (what `tokenizer_proto` reads)."""
    sp_model = sentencepiece_model_pb2()
    proto = sp_model.ModelProto.FromString(tokenizer.model_proto)
    control = sp_model.ModelProto.SentencePiece.Type.CONTROL
    pieces, types = [], []
    for entry in proto.pieces:
        piece = entry.piece
        # A run of two or more whitespace markers is spelt with spaces (a lone one is not).
        if len(piece) > 1 and set(piece) == {"\u2581"}:
            piece = piece.replace("\u2581", " ")
        pieces.append(piece)
        # llama.cpp flags the turn markers as control tokens, so chat templates stop on them.
        types.append(control if entry.piece in (START_OF_TURN, END_OF_TURN) else entry.type)
    writer.add_tokenizer_model("llama")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(pieces)
    writer.add_token_scores([entry.score for entry in proto.pieces])
    writer.add_token_types(types)
    writer.add_bos_token_id(tokenizer.bos_id)
    writer.add_eos_token_id(tokenizer.eos_id)
    writer.add_unk_token_id(proto.trainer_spec.unk_id)
    writer.add_pad_token_id(tokenizer.pad_id)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(proto.normalizer_spec.add_dummy_prefix)


def write_gguf(
    params: Mapping[Any, Any],
    config: ModelConfig,
    tokenizer: Tokenizer,
    path: str | os.PathLike[str],
    *,
    dtype: str = "float32",
) -> Path:
    """Write `params` of `config` and `tokenizer`'s vocabulary as a GGUF file at `path`.

    dtype "float16" stores matrices as F16 and keeps norms in F32, as llama.cpp does.
    The file appears at `path` only once complete.
    """
    import gguf

    if dtype not in GGUF_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(GGUF_DTYPES)}, got {dtype!r}")
    if tokenizer.vocab_size != config.vocab_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocab_size} pieces but model preset "
            f"{config.name!r} has vocab_size={config.vocab_size}"
        )
    _check_expressible(config)
    tensors = gguf_tensors(params, config)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")

    writer = gguf.GGUFWriter(str(partial), arch=config.family)
    writer.add_name(config.name)
    writer.add_file_type(
        gguf.LlamaFileType.ALL_F32 if dtype == "float32" else gguf.LlamaFileType.MOSTLY_F16
    )
    writer.add_context_length(config.max_seq_len)
    writer.add_embedding_length(config.embed_dim)
    writer.add_block_count(config.num_layers)
    writer.add_feed_forward_length(config.hidden_dim)
    writer.add_head_count(config.num_heads)
    writer.add_head_count_kv(config.num_kv_heads)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.global_rope_base)
    if config.global_rope_scale != 1.0:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(config.global_rope_scale)
    writer.add_sliding_window(config.sliding_window)
    if config.attn_logit_softcap is not None:
        writer.add_attn_logit_softcapping(config.attn_logit_softcap)
    if config.final_logit_softcap is not None:
        writer.add_final_logit_softcapping(config.final_logit_softcap)

    _add_vocabulary(writer, tokenizer)
    for name, value in tensors.items():
        if dtype == "float16" and value.ndim > 1:
            value = value.astype(np.float16)
        writer.add_tensor(name, value)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path
