"""SentencePiece tokenizer for Gemma, with the chat-turn ids the sampler stops on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

TOKENIZER_FILENAME = "tokenizer.model"
START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"


class Tokenizer:
    """A SentencePiece model held as its serialized proto (so it can be saved anywhere)."""

    def __init__(self, model_proto: bytes):
        self._proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor()
        self._sp.LoadFromSerializedProto(self._proto)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """From a `tokenizer.model` file or a directory holding one."""
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"SentencePiece model not found: {path}")
        return cls(path.read_bytes())

    def save(self, directory: str | os.PathLike[str]) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / TOKENIZER_FILENAME
        target.write_bytes(self._proto)
        return target

    @property
    def model_proto(self) -> bytes:
        return self._proto

    def encode(self, text: str, *, add_bos: bool = False) -> list[int]:
        ids = list(self._sp.EncodeAsIds(text))
        return [self.bos_id, *ids] if add_bos else ids

    def decode(self, ids: Sequence[int]) -> str:
        text: str = self._sp.DecodeIds([int(i) for i in ids])
        return text

    def piece_id(self, piece: str) -> int | None:
        """The id of a piece, None when the vocabulary lacks it."""
        piece_id = self._sp.PieceToId(piece)
        if piece_id == self._sp.unk_id() and piece != self._sp.IdToPiece(piece_id):
            return None
        return piece_id

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def bos_id(self) -> int:
        return self._sp.bos_id()

    @property
    def eos_id(self) -> int:
        return self._sp.eos_id()

    @property
    def pad_id(self) -> int:
        return self._sp.pad_id()

    @property
    def end_of_turn_id(self) -> int | None:
        return self.piece_id(END_OF_TURN)

    @property
    def start_of_turn_id(self) -> int | None:
        return self.piece_id(START_OF_TURN)

    @property
    def stop_ids(self) -> tuple[int, ...]:
        """Ids that end a generation: `<eos>` and, where the vocabulary has it, `<end_of_turn>`."""
        eot = self.end_of_turn_id
        return (self.eos_id,) if eot is None else (self.eos_id, eot)


def sentencepiece_model_pb2() -> Any:
    """SentencePiece's model proto module (`ModelProto`, `TrainerSpec`), imported on use.

    Typed Any: protoc's generated module creates its classes at import time and
    sentencepiece ships no stub for it, so mypy would see none of its attributes.
    """
    from sentencepiece import sentencepiece_model_pb2 as sp_model

    return sp_model


def byte_level_proto(vocab_size: int) -> bytes:
    """A SentencePiece model that spells text as UTF-8 bytes, padded to `vocab_size` pieces.

    Gives models with no tokenizer of their own (tiny test presets, random weights) a
    working, lossless tokenizer with Gemma's special ids: pad 0, eos 1, bos 2, unk 3.
    """
    sp_model = sentencepiece_model_pb2()
    piece_type = sp_model.ModelProto.SentencePiece.Type
    specials = [
        ("<pad>", piece_type.CONTROL),
        ("<eos>", piece_type.CONTROL),
        ("<bos>", piece_type.CONTROL),
        ("<unk>", piece_type.UNKNOWN),
        (START_OF_TURN, piece_type.USER_DEFINED),
        (END_OF_TURN, piece_type.USER_DEFINED),
    ]
    # The whitespace marker needs a piece of its own so decoding turns it back into a space.
    pieces = [*specials, ("\u2581", piece_type.NORMAL)] + [
        (f"<0x{byte:02X}>", piece_type.BYTE) for byte in range(256)
    ]
    if vocab_size < len(pieces):
        raise ValueError(f"a byte-level vocabulary needs {len(pieces)} ids, got {vocab_size}")
    pieces += [(f"<unused{i}>", piece_type.CONTROL) for i in range(vocab_size - len(pieces))]
    model = sp_model.ModelProto()
    for piece, kind in pieces:
        entry = model.pieces.add()
        entry.piece, entry.score, entry.type = piece, 0.0, kind
    trainer = model.trainer_spec
    trainer.model_type = sp_model.TrainerSpec.BPE
    trainer.vocab_size = vocab_size
    trainer.byte_fallback = True
    # SentencePiece finds the special ids through these piece names.
    trainer.pad_piece, trainer.eos_piece, trainer.bos_piece, trainer.unk_piece = (
        piece for piece, _ in specials[:4]
    )
    trainer.pad_id, trainer.eos_id, trainer.bos_id, trainer.unk_id = range(4)
    normalizer = model.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = False
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    serialized: bytes = model.SerializeToString()
    return serialized
