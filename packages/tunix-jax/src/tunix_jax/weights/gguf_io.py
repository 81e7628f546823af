"""Reading Gemma weights and vocabulary from a GGUF file (llama.cpp's format).

Weights are dequantised to float32 with the `gguf` package's block decoders, over many
rows at a time, from a memory map of the file. `GGUFTensors` reads the header itself:
`gguf.GGUFReader` takes ~18 s to build its fields for a 262k-token vocabulary, and its
`contents()` as long again to hand them back; here the vocabulary costs a fraction of a
second, and only when the tokenizer asks for it.
llama.cpp stores Gemma's norm scales as `1 + w`; the Tunix layout stores `w`, so 1 is
subtracted on the way in. The vocabulary becomes a SentencePiece model proto (see
`tokenizer_proto`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import logging
import math
import os
import struct
from pathlib import Path
from typing import Any

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
    empty_aligned,
)
from tunix_jax.models.gemma.tokenizer import sentencepiece_model_pb2

logger = logging.getLogger(__name__)

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


def _field(tensors: GGUFTensors, key: str) -> Any:
    value = tensors.fields.get(key)
    if value is None:
        raise WeightsNotFoundError(f"{tensors.path}: GGUF metadata has no {key!r}")
    return value.decode() if isinstance(value, StringArray) else value


# GGUF metadata value types: struct formats of the scalars; 8 is a string, 9 an array.
_SCALAR_FORMATS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?",
                   10: "Q", 11: "q", 12: "d"}  # fmt: skip
_STRING, _ARRAY = 8, 9
# Dequantise this many values at a time: large enough that the per-call overhead of the
# block decoders vanishes, small enough that their temporaries stay in cache-sized chunks.
_DEQUANTIZE_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class StringArray:
    """An array of strings in the header (the vocabulary), left undecoded until asked for:
    weights never need it. ``start`` is the byte offset of its first string's length."""

    buffer: memoryview
    start: int
    count: int

    def decode(self) -> list[str]:
        strings, at = [], self.start
        for _ in range(self.count):
            (length,) = struct.unpack_from("<Q", self.buffer, at)
            strings.append(str(self.buffer[at + 8 : at + 8 + length], "utf-8", errors="replace"))
            at += 8 + length
        return strings


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A tensor's place in a GGUF file: numpy shape (outermost first), type, byte offset."""

    name: str
    shape: tuple[int, ...]
    tensor_type: int
    offset: int


class GGUFTensors:
    """The metadata and the tensor table of a little-endian GGUF file (v2 or v3), parsed
    with `struct`, and a read-only memory map of the tensor data. Metadata values are as
    `gguf.GGUFReader`'s ``contents()`` gives them, except arrays: numbers as numpy views of
    the file, strings as a `StringArray` (decoded on demand), arrays of arrays as None."""

    def __init__(self, path: Path):
        self.path = path
        # A plain ndarray view: slices of an np.memmap pay for its subclass bookkeeping.
        self.data = np.asarray(np.memmap(path, dtype=np.uint8, mode="r"))
        buffer = memoryview(self.data.data)
        if bytes(buffer[:4]) != b"GGUF":
            raise WeightsShapeError(f"{path}: not a GGUF file")
        version, tensor_count, field_count = struct.unpack_from("<IQQ", buffer, 4)
        if version not in (2, 3):
            raise WeightsShapeError(
                f"{path}: GGUF version {version} (a big-endian file, or too new); "
                "little-endian GGUF v2 and v3 are supported"
            )
        self._buffer, self._at = buffer, 24
        self.fields: dict[str, Any] = {}
        self.tensors: dict[str, TensorInfo] = {}
        try:
            self._read_header(field_count, tensor_count)
        except struct.error as error:
            raise WeightsShapeError(f"{path}: truncated GGUF header ({error})") from error
        alignment = int(self.fields.get("general.alignment", 32))
        self.data_start = -(-self._at // alignment) * alignment

    def _read_header(self, field_count: int, tensor_count: int) -> None:
        for _ in range(field_count):
            key = self._string()
            (kind,) = self._unpack("<I")
            self.fields[key] = self._value(kind)
        for _ in range(tensor_count):
            name = self._string()
            (dims,) = self._unpack("<I")
            shape = self._unpack(f"<{dims}Q")
            kind, offset = self._unpack("<IQ")
            self.tensors[name] = TensorInfo(name, tuple(reversed(shape)), kind, offset)

    def _unpack(self, form: str) -> tuple[Any, ...]:
        values = struct.unpack_from(form, self._buffer, self._at)
        self._at += struct.calcsize(form)
        return values

    def _string(self) -> str:
        (length,) = self._unpack("<Q")
        text = bytes(self._buffer[self._at : self._at + length]).decode("utf-8", errors="replace")
        self._at += length
        return text

    def _value(self, kind: int) -> Any:
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            item_kind, count = self._unpack("<IQ")
            if item_kind == _STRING:
                strings = StringArray(self._buffer, self._at, count)
                for _ in range(count):
                    (length,) = struct.unpack_from("<Q", self._buffer, self._at)
                    self._at += 8 + length
                return strings
            if item_kind == _ARRAY:  # no Gemma key holds one: skipped
                for _ in range(count):
                    self._value(_ARRAY)
                return None
            if item_kind not in _SCALAR_FORMATS:
                raise WeightsShapeError(f"{self.path}: unknown GGUF metadata type {item_kind}")
            dtype = np.dtype("<" + _SCALAR_FORMATS[item_kind])
            values = np.frombuffer(self._buffer, dtype, count, self._at)
            self._at += count * dtype.itemsize
            return values
        if kind not in _SCALAR_FORMATS:
            raise WeightsShapeError(f"{self.path}: unknown GGUF metadata type {kind}")
        return self._unpack("<" + _SCALAR_FORMATS[kind])[0]

    def raw(self, tensor: TensorInfo) -> np.ndarray:
        """The tensor's bytes as rows of uint8 (a view of the memory map)."""
        import gguf

        block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(tensor.tensor_type)]
        *outer, row = tensor.shape
        row_bytes = row // block * type_size
        start = self.data_start + tensor.offset
        rows = math.prod(outer)
        if start + rows * row_bytes > self.data.size:
            raise WeightsShapeError(f"{self.path}: tensor {tensor.name!r} runs past the file's end")
        return self.data[start : start + rows * row_bytes].reshape(rows, row_bytes)


@functools.lru_cache(maxsize=1)
def _cached_tensors(path: str, mtime_ns: int, size: int) -> GGUFTensors:
    del mtime_ns, size  # part of the cache key only
    return GGUFTensors(Path(path))


def _tensors(path: Path) -> GGUFTensors:
    path = path.absolute()
    if not path.is_file():
        raise WeightsNotFoundError(f"GGUF file not found: {path}")
    stat = path.stat()
    return _cached_tensors(str(path), stat.st_mtime_ns, stat.st_size)


def dequantize(tensors: GGUFTensors, tensor: TensorInfo) -> np.ndarray:
    """The tensor as float32 in its numpy shape: float32 data is a view of the memory map,
    the rest is decoded by `gguf.quants`' block decoders (the same arithmetic as
    `gguf.quants.dequantize`, so the same bits), many rows per call."""
    import gguf
    import gguf.quants

    kind = gguf.GGMLQuantizationType
    qtype = kind(tensor.tensor_type)
    rows = tensors.raw(tensor)
    if qtype == kind.F32:
        return rows.view(np.float32).reshape(tensor.shape)
    if qtype == kind.BF16:
        # BF16 is the upper half of float32.
        return (rows.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(tensor.shape)
    if qtype in (kind.F16, kind.F64):
        dtype = np.float16 if qtype == kind.F16 else np.float64
        return rows.view(dtype).astype(np.float32).reshape(tensor.shape)
    decoder = getattr(gguf.quants, qtype.name, None)
    if decoder is None or not hasattr(decoder, "dequantize_rows"):
        raise UnsupportedQuantizationError(
            f"{tensors.path}: tensor {tensor.name!r} uses GGUF type {qtype.name}, which cannot "
            f"be dequantised (supported: F32, F16, BF16, Q4_0..Q8_0, Q2_K..Q6_K, IQ*)"
        )
    decoder.init_grid()  # the IQ types' lookup grids, built once, before the threads
    out = empty_aligned((rows.shape[0], tensor.shape[-1]))
    step = max(1, _DEQUANTIZE_CHUNK // tensor.shape[-1])

    def decode(first: int) -> None:
        out[first : first + step] = decoder.dequantize_rows(rows[first : first + step])

    # numpy releases the GIL inside the decoders' array operations: chunks run in parallel.
    list(_decoding_threads().map(decode, range(0, rows.shape[0], step)))
    return out.reshape(tensor.shape)


@functools.cache
def _decoding_threads() -> concurrent.futures.ThreadPoolExecutor:
    # The cores this process may use (Linux), else all of them (macOS has no affinity call).
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    workers = len(usable) if usable else os.cpu_count() or 1
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="gguf-decode")


def _check_metadata(fields: dict[str, Any], config: ModelConfig, path: Path) -> None:
    arch = fields.get("general.architecture")
    if arch is None:
        raise WeightsNotFoundError(f"{path}: GGUF metadata has no 'general.architecture'")
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
        value = fields.get(key)
        if value is not None and int(value) != want:
            raise WeightsShapeError(
                f"{path}: GGUF metadata {key}={value} but model preset {config.name!r} has {want}"
            )


def read_params(path: str | os.PathLike[str], config: ModelConfig) -> dict[ParamPath, SourceTensor]:
    """Flat Tunix-layout parameters (float32) from a Gemma 2 / Gemma 3 GGUF file."""
    path = Path(path)
    tensors = _tensors(path)
    _check_metadata(tensors.fields, config, path)
    src = str(path)

    def load(name: str, shape: tuple[int, ...]) -> np.ndarray:
        tensor = tensors.tensors.get(name)
        if tensor is None:
            raise WeightsNotFoundError(f"{src}: no tensor {name!r} (model preset {config.name!r})")
        value = dequantize(tensors, tensor)
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

    The result is cached on disk (see :func:`tokenizer_cache_dir`), keyed by the file's
    path, size and modification time.
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
    tensors = _tensors(path)
    tokenizer_kind = _field(tensors, "tokenizer.ggml.model")
    if tokenizer_kind != "llama":
        raise WeightsShapeError(
            f"{path}: tokenizer.ggml.model is {tokenizer_kind!r}; only SentencePiece ('llama') "
            "vocabularies convert to a SentencePiece model"
        )
    pieces = _field(tensors, "tokenizer.ggml.tokens")
    scores = _field(tensors, "tokenizer.ggml.scores").tolist()
    types = _field(tensors, "tokenizer.ggml.token_type").tolist()
    special = {
        name: int(_field(tensors, f"tokenizer.ggml.{name}_token_id"))
        for name in ("bos", "eos", "unknown", "padding")
    }
    add_space_prefix = tensors.fields.get("tokenizer.ggml.add_space_prefix")

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
    normalizer.add_dummy_prefix = bool(add_space_prefix)
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    serialized: bytes = model.SerializeToString()
    return serialized
