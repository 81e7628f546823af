"""Split names and the seeded train/eval split shared by the providers."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from tunix_core.config import structure
from tunix_core.errors import DataError

T = TypeVar("T")

TRAIN_EVAL = ("train", "eval")


OptionsT = TypeVar("OptionsT")


def require_split(dataset: str, split: str, available: Sequence[str]) -> None:
    """Raise :class:`DataError` naming ``split`` and the splits ``dataset`` has."""
    if split not in available:
        raise DataError(
            f"dataset {dataset!r} has no split {split!r}; available: {', '.join(available)}"
        )


def check_request(
    dataset: str,
    split: str,
    argument: str | None,
    options: Mapping[str, Any],
    options_class: type[OptionsT],
    available: Sequence[str] = ("train", "eval"),
) -> OptionsT:
    """The checks every built-in generated dataset makes on a load: a known split, no
    ``NAME:ARGUMENT``, and options that structure into ``options_class``."""
    require_split(dataset, split, available)
    if argument:
        raise DataError(f"dataset {dataset!r} takes no argument, got {dataset}:{argument}")
    return structure(options, options_class, source=dataset, root="dataset.options")


def derived_seed(seed: int, *labels: str) -> int:
    """A seed for one named stream (a family, a split) that does not depend on
    ``PYTHONHASHSEED`` and does not collide with the streams of other labels."""
    digest = hashlib.sha256(":".join((str(seed), *labels)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def seeded_split(items: Sequence[T], eval_fraction: float, seed: int) -> dict[str, list[T]]:
    """Split ``items`` into ``train`` and ``eval`` with a seeded shuffle of positions; each
    split keeps the items' original order. Both splits get at least one item when there
    are two or more."""
    count = len(items)
    eval_count = round(count * eval_fraction)
    if count >= 2:
        eval_count = min(max(eval_count, 1), count - 1)
    positions = list(range(count))
    random.Random(derived_seed(seed, "eval-split")).shuffle(positions)
    chosen = set(positions[:eval_count])
    return {
        "train": [item for i, item in enumerate(items) if i not in chosen],
        "eval": [item for i, item in enumerate(items) if i in chosen],
    }
