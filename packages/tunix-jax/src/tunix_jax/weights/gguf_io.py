"""Reading Gemma weights and vocabulary from a GGUF file (llama.cpp's format).

Weights are dequantised to float32 with the `gguf` package. llama.cpp stores Gemma's
norm scales as `1 + w`; the Tunix layout stores `w`, so 1 is subtracted on the way in.
The vocabulary becomes a SentencePiece model proto (see `tokenizer_proto`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.errors import (
    UnsupportedQuantizationError,
    WeightsNotFoundError,
    WeightsShapeError,
)
from tunix_jax.models.gemma.params import (
    ParamPath,
    SourceTensor,
    check_source_shape,
    convert_linear_layout,
)
from tunix_jax.models.gemma.tokenizer import sentencepiece_model_pb2

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import gguf

# Turn markers that GGUF flags as control tokens but that must be matched in plain text.
_TEXT_MATCHED_CONTROL_PIECES = ("<start_of_turn>", "<end_of_turn>")

BLOCK_TENSORS = {
    "q": "attn_q",
    "k": "attn_k",
    "v": "attn_v",
    "o": "attn_output",
    "gate": "ffn_gate",
    "up": "ffn_up",
    "down": "ffn_down",
    "pre_attn_norm": "attn_norm",
    "post_attn_norm": "post_attention_norm",
    "pre_ffw_norm": "ffn_norm",
    "post_ffw_norm": "post_ffw_norm",
    "q_norm": "attn_q_norm",
    "k_norm": "attn_k_norm",
}


def _reader(path: str | os.PathLike[str]) -> gguf.GGUFReader:
    path = Path(path).absolute()
    if not path.is_file():
        raise WeightsNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    return _cached_reader(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _cached_reader(path: str, mtime_ns: int, size: int) -> gguf.GGUFReader:
    """Parsing the metadata of a 262k-token vocabulary takes ~20 s: weights and tokenizer share it."""
    import gguf

    del mtime_ns, size  # part of the cache key only
    return gguf.GGUFReader(path)


def _field(reader: gguf.GGUFReader, key: str, path: Path) -> Any:
    field = reader.fields.get(key)
    if field is None:
        raise WeightsNotFoundError(f"{path}: GGUF metadata has no {key!r}")
    return field.contents()


def _dequantize(tensor: gguf.ReaderTensor, path: Path) -> np.ndarray:
    import gguf
    import gguf.quants

    qtype = tensor.tensor_type
    kind = gguf.GGMLQuantizationType
    if qtype == kind.BF16:
        # BF16 is the upper half of float32.
        raw = np.asarray(tensor.data).view(np.uint16).astype(np.uint32) << 16
        return raw.view(np.float32)
    if qtype == kind.F64:
        return np.asarray(tensor.data, dtype=np.float32)
    try:
        return np.asarray(gguf.quants.dequantize(tensor.data, qtype), dtype=np.float32)
    except NotImplementedError as error:
        raise UnsupportedQuantizationError(
            f"{path}: tensor {tensor.name!r} uses GGUF type {qtype.name}, which cannot be "
            f"dequantised (supported: F32, F16, BF16, Q4_0..Q8_0, Q2_K..Q6_K, IQ*)"
        ) from error


def _check_metadata(reader: gguf.GGUFReader, config: ModelConfig, path: Path) -> None:
    arch = _field(reader, "general.architecture", path)
    if arch != config.family:
        raise WeightsShapeError(
            f"{path}: GGUF architecture {arch!r} does not match model preset "
            f"{config.name!r} (family {config.family!r})"
        )
    checks = {
        f"{arch}.block_count": config.num_layers,
        f"{arch}.embedding_length": config.embed_dim,
        f"{arch}.feed_forward_length": config.hidden_dim,
        f"{arch}.attention.head_count": config.num_heads,
        f"{arch}.attention.head_count_kv": config.num_kv_heads,
    }
    for key, want in checks.items():
        field = reader.fields.get(key)
        if field is not None and int(field.contents()) != want:
            raise WeightsShapeError(
                f"{path}: GGUF metadata {key}={field.contents()} but model preset "
                f"{config.name!r} has {want}"
            )


def read_params(path: str | os.PathLike[str], config: ModelConfig) -> dict[ParamPath, SourceTensor]:
    """Flat Tunix-layout parameters (float32) from a Gemma 2 / Gemma 3 GGUF file."""
    path = Path(path)
    reader = _reader(path)
    _check_metadata(reader, config, path)
    tensors = {t.name: t for t in reader.tensors}
    src = str(path)

    def load(name: str, shape: tuple[int, ...]) -> np.ndarray:
        tensor = tensors.get(name)
        if tensor is None:
            raise WeightsNotFoundError(f"{src}: no tensor {name!r} (model preset {config.name!r})")
        value = _dequantize(tensor, path)
        check_source_shape(src, name, value, shape, config)
        return value

    return convert_linear_layout(
        load,
        embedding="token_embd.weight",
        final_norm="output_norm.weight",
        block_tensor=lambda layer, role: f"blk.{layer}.{BLOCK_TENSORS[role]}.weight",
        config=config,
        norm_offset=1.0,
    )


# Bump when tokenizer_proto's output changes: cached models of older versions are ignored.
_TOKENIZER_CACHE_VERSION = 1


def tokenizer_cache_dir() -> Path:
    """Where converted vocabularies are kept between processes: ``$TUNIX_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/tunix``, else ``~/.cache/tunix``."""
    if os.environ.get("TUNIX_CACHE_DIR"):
        return Path(os.environ["TUNIX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tunix"


def tokenizer_proto(path: str | os.PathLike[str]) -> bytes:
    """A serialized SentencePiece model rebuilt from a GGUF file's SentencePiece vocabulary.

    Parsing a 262k-token vocabulary takes ~20 s, so the result is cached on disk (see
    :func:`tokenizer_cache_dir`), keyed by the file's path, size and modification time.
    """
    path = Path(path).absolute()
    if not path.is_file():
        raise WeightsNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    key = hashlib.sha256(
        f"{_TOKENIZER_CACHE_VERSION}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
    ).hexdigest()[:32]
    cached = tokenizer_cache_dir() / "tokenizers" / f"{key}.model"
    if cached.is_file():
        return cached.read_bytes()
    proto = _convert_tokenizer(path)
    try:  # a read-only home only costs the next process the conversion
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(proto)
        os.replace(partial, cached)
    except OSError as exc:
        logger.debug("could not cache the tokenizer of %s in %s: %s", path, cached, exc)
    return proto


def _convert_tokenizer(path: Path) -> bytes:
    """GGUF keeps pieces, scores and token types (the same enum as SentencePiece). The turn
    markers become USER_DEFINED pieces so that `<start_of_turn>` in text encodes to its id
    instead of being split into characters; `<unk>` becomes the UNKNOWN piece."""
    sp_model = sentencepiece_model_pb2()
    reader = _reader(path)
    tokenizer_kind = _field(reader, "tokenizer.ggml.model", path)
    if tokenizer_kind != "llama":
        raise WeightsShapeError(
            f"{path}: tokenizer.ggml.model is {tokenizer_kind!r}; only SentencePiece ('llama') "
            "vocabularies convert to a SentencePiece model"
        )
    pieces = _field(reader, "tokenizer.ggml.tokens", path)
    scores = _field(reader, "tokenizer.ggml.scores", path)
    types = _field(reader, "tokenizer.ggml.token_type", path)
    special = {
        name: int(_field(reader, f"tokenizer.ggml.{name}_token_id", path))
        for name in ("bos", "eos", "unknown", "padding")
    }
    add_space_prefix = reader.fields.get("tokenizer.ggml.add_space_prefix")

    piece_type = sp_model.ModelProto.SentencePiece.Type
    model = sp_model.ModelProto()
    for index, (piece, score, kind) in enumerate(zip(pieces, scores, types, strict=True)):
        entry = model.pieces.add()
        # SentencePiece matches pieces against text whose spaces became U+2581; GGUF keeps
        # the whitespace-run pieces ("  ", "   ", ...) with plain spaces.
        entry.piece = piece.replace(" ", "\u2581")
        entry.score = float(score)
        entry.type = int(kind)
        if piece in _TEXT_MATCHED_CONTROL_PIECES:
            entry.type = piece_type.USER_DEFINED
        if index == special["unknown"]:
            entry.type = piece_type.UNKNOWN

    trainer = model.trainer_spec
    trainer.model_type = sp_model.TrainerSpec.BPE
    trainer.vocab_size = len(pieces)
    trainer.byte_fallback = any(int(kind) == piece_type.BYTE for kind in types)
    trainer.split_digits = True
    trainer.allow_whitespace_only_pieces = True
    trainer.unk_id = special["unknown"]
    trainer.bos_id = special["bos"]
    trainer.eos_id = special["eos"]
    trainer.pad_id = special["padding"]
    trainer.unk_piece = pieces[special["unknown"]]
    trainer.bos_piece = pieces[special["bos"]]
    trainer.eos_piece = pieces[special["eos"]]
    trainer.pad_piece = pieces[special["padding"]]

    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = bool(add_space_prefix.contents()) if add_space_prefix else False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    serialized: bytes = model.SerializeToString()
    return serialized
