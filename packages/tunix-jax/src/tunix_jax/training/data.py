"""From rendered prompt/completion pairs to fixed-shape training batches.

An example becomes ``prompt tokens (with BOS) + completion tokens``; loss is taken on
the completion only (its last token is ``<end_of_turn>``). A row of a batch holds
``max_seq_len`` input tokens, the next-token targets, a per-target weight (1 on
completion targets), a segment id per token (0 = padding, 1.. = the examples packed
into the row) and positions that restart at 0 in every segment.

The order of rows is a pure function of (seed, epoch), and :class:`BatchStream`'s whole
state is ``(epoch, cursor)``, so a resumed run reads exactly the batches an
uninterrupted run would have read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import attrs
import numpy as np

from tunix_core.errors import DataError

BATCH_KEYS = ("inputs", "targets", "weights", "segment_ids", "positions")


class TextEncoder(Protocol):
    def encode(self, text: str, *, add_bos: bool = False) -> list[int]: ...


@attrs.frozen
class TokenizedExample:
    """``tokens`` of the whole turn and ``loss_mask`` (True on completion tokens)."""

    tokens: np.ndarray
    loss_mask: np.ndarray

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


@attrs.frozen
class TokenizeReport:
    """How many examples were kept, truncated (lost completion tokens) or dropped
    (no completion token left within ``max_seq_len``)."""

    kept: int
    truncated: int
    dropped: int


def tokenize_pairs(
    pairs: Iterable[tuple[str, str]], encoder: TextEncoder, max_seq_len: int
) -> tuple[list[TokenizedExample], TokenizeReport]:
    """Tokenize ``(prompt, completion)`` pairs and cut them to ``max_seq_len`` inputs.

    A row of ``max_seq_len`` inputs predicts ``max_seq_len`` targets, so an example keeps
    at most ``max_seq_len + 1`` tokens.
    """
    examples: list[TokenizedExample] = []
    truncated = dropped = 0
    limit = max_seq_len + 1
    for prompt, completion in pairs:
        prompt_ids = encoder.encode(prompt, add_bos=True)
        completion_ids = encoder.encode(completion)
        if not completion_ids or len(prompt_ids) >= limit:
            dropped += 1
            continue
        tokens = np.asarray([*prompt_ids, *completion_ids], dtype=np.int32)
        mask = np.zeros(tokens.shape, dtype=bool)
        mask[len(prompt_ids) :] = True
        if tokens.shape[0] > limit:
            truncated += 1
            tokens, mask = tokens[:limit], mask[:limit]
        examples.append(TokenizedExample(tokens, mask))
    return examples, TokenizeReport(len(examples), truncated, dropped)


def _empty_rows(count: int, seq_len: int) -> dict[str, np.ndarray]:
    return {
        "inputs": np.zeros((count, seq_len), np.int32),
        "targets": np.zeros((count, seq_len), np.int32),
        "weights": np.zeros((count, seq_len), np.float32),
        "segment_ids": np.zeros((count, seq_len), np.int32),
        "positions": np.zeros((count, seq_len), np.int32),
    }


def build_rows(
    examples: Sequence[TokenizedExample],
    order: Sequence[int] | np.ndarray,
    seq_len: int,
    *,
    packing: bool,
) -> dict[str, np.ndarray]:
    """Rows in ``order``. With ``packing`` consecutive examples share a row while they
    fit (greedy, order kept); without it every example has its own row."""
    groups: list[list[int]] = []
    used = seq_len  # forces a new row for the first example
    for index in order:
        length = len(examples[index]) - 1  # inputs an example occupies
        if packing and groups and used + length <= seq_len:
            groups[-1].append(index)
            used += length
        else:
            groups.append([index])
            used = length
    rows = _empty_rows(len(groups), seq_len)
    for row, group in enumerate(groups):
        start = 0
        for segment, index in enumerate(group, start=1):
            example = examples[index]
            n = len(example) - 1
            span = slice(start, start + n)
            rows["inputs"][row, span] = example.tokens[:-1]
            rows["targets"][row, span] = example.tokens[1:]
            rows["weights"][row, span] = example.loss_mask[1:]
            rows["segment_ids"][row, span] = segment
            rows["positions"][row, span] = np.arange(n)
            start += n
    return rows


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled example order of ``epoch``; the same for the same (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


@attrs.define
class BatchStream:
    """Endless batches over shuffled epochs; a batch that runs past an epoch's last row
    continues with the next epoch's first rows."""

    examples: Sequence[TokenizedExample]
    batch_size: int
    seq_len: int
    seed: int
    packing: bool
    epoch: int = 0
    cursor: int = 0
    _rows: dict[str, np.ndarray] | None = attrs.field(default=None, init=False, repr=False)
    _rows_epoch: int = attrs.field(default=-1, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.examples:
            raise DataError("no training examples left to build batches from")

    def rows(self, epoch: int) -> dict[str, np.ndarray]:
        if self._rows_epoch != epoch:
            order = epoch_order(len(self.examples), self.seed, epoch)
            self._rows = build_rows(self.examples, order, self.seq_len, packing=self.packing)
            self._rows_epoch = epoch
        assert self._rows is not None
        return self._rows

    def rows_per_epoch(self) -> int:
        return int(self.rows(self.epoch)["inputs"].shape[0])

    def next_batch(self) -> dict[str, np.ndarray]:
        parts: list[dict[str, np.ndarray]] = []
        needed = self.batch_size
        while needed:
            rows = self.rows(self.epoch)
            available = rows["inputs"].shape[0] - self.cursor
            take = min(needed, available)
            parts.append({k: v[self.cursor : self.cursor + take] for k, v in rows.items()})
            self.cursor += take
            needed -= take
            if self.cursor == rows["inputs"].shape[0]:
                self.epoch, self.cursor = self.epoch + 1, 0
        return {k: np.concatenate([p[k] for p in parts]) for k in BATCH_KEYS}

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def restore(self, state: dict[str, int]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])


@attrs.define
class IndexStream:
    """Endless batches of item indices over shuffled epochs (the GRPO trainer's prompts),
    in the same order :class:`BatchStream` would visit the items; its whole state is
    ``(epoch, cursor)``, so a resumed run draws the batches an uninterrupted one would."""

    num_items: int
    batch_size: int
    seed: int
    epoch: int = 0
    cursor: int = 0

    def __attrs_post_init__(self) -> None:
        if self.num_items < 1:
            raise DataError("no training items left to draw prompts from")

    def next_batch(self) -> list[int]:
        batch: list[int] = []
        while len(batch) < self.batch_size:
            order = epoch_order(self.num_items, self.seed, self.epoch)
            take = min(self.batch_size - len(batch), self.num_items - self.cursor)
            batch.extend(int(i) for i in order[self.cursor : self.cursor + take])
            self.cursor += take
            if self.cursor == self.num_items:
                self.epoch, self.cursor = self.epoch + 1, 0
        return batch

    def state(self) -> dict[str, int]:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def restore(self, state: dict[str, int]) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
