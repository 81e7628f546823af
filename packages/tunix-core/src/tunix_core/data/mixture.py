"""A run's data from its ``dataset`` section: one dataset, or a seeded mixture of several.

A mixture (``dataset.mix``) draws from each part's own split. Questions are compared
normalised (whitespace collapsed, case folded): a question seen in an earlier part (or
earlier in the same part) is dropped, and no training item asks a question that any
part's eval split asks, so train and eval stay disjoint across the whole mixture. Each
part then gets ``round(T * weight / sum of weights)`` items, with ``T`` the largest total
no part runs short of, drawn with the dataset seed; the mixture is shuffled with the same
seed, and ``train_limit``/``eval_limit`` cut it last. The same section and seed always give
the same items in the same order.

A mixture's ``ood`` split is every part's own ``ood`` split, whole (no weight, no part
``limit``) and in part order (parts without one add nothing; repeated questions are
dropped), so a run on a mixture is scored on the same ood items, in the same order, as a
run on its part alone. Training items never ask an ood question either.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from typing import Any

import attrs

from tunix_core.config import OOD_SPLIT, DatasetSection, MixPart
from tunix_core.data.loading import load_split, split_names
from tunix_core.data.record import ReasoningExample, check_unique_ids, dumps_jsonl
from tunix_core.data.splits import TRAIN_EVAL, derived_seed, require_split
from tunix_core.errors import ConfigError, DataError
from tunix_core.protocols import DatasetRegistry, TransformRegistry
from tunix_core.registry import UnknownNameError


@attrs.frozen
class PartReport:
    """What one part contributed to a split of a mixture. ``sha256`` is that of its items
    as ``tunix datasets export`` writes them (JSONL), in the order they appear in the split."""

    name: str
    weight: float
    available: int  # after duplicates and eval questions were removed, before weighting
    count: int
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


@attrs.frozen
class LoadedSplit:
    """A split of the section's data; ``parts`` is empty unless the data is a mixture."""

    examples: list[ReasoningExample]
    parts: tuple[PartReport, ...] = ()


def normalise_question(question: str) -> str:
    """The form in which two questions count as the same one."""
    return " ".join(question.split()).casefold()


def load_dataset_split(
    registry: DatasetRegistry,
    section: DatasetSection,
    split: str,
    *,
    limit: int | None,
    transforms: TransformRegistry,
) -> LoadedSplit:
    """``split`` of ``section``'s data (a mixture has ``train`` and ``eval``, and ``ood``
    when a part has one: :func:`mixture_splits`), its first ``limit`` items if given (a run
    passes ``train_limit`` or ``eval_limit``); ``transforms`` are the run host's row
    transforms."""
    if not section.mix:
        examples = load_split(registry, section.name, split, seed=section.seed,
                              options=section.options, limit=limit, transforms=transforms)  # fmt: skip
        return LoadedSplit(examples)
    check_part_names(registry, section.mix)
    require_split("dataset.mix", split, mixture_splits(registry, section.mix))
    if split == OOD_SPLIT:
        # Whole and unweighted: the items (and order) a run on the part alone is scored on.
        available = _distinct(_load_parts(registry, section, split, transforms), excluded=set())
        chosen = available
        mixed = [example for examples in chosen for example in examples]
    else:
        held_out = set() if split == "eval" else {
            normalise_question(example.question)
            for held in ("eval", OOD_SPLIT)
            for examples in _load_parts(registry, section, held, transforms)
            for example in examples
        }  # fmt: skip
        available = _distinct(_load_parts(registry, section, split, transforms), held_out)
        chosen = _draw(available, section, split)
        mixed = [example for examples in chosen for example in examples]
        random.Random(derived_seed(section.seed, "mix", split)).shuffle(mixed)
    mixed = mixed[:limit] if limit is not None else mixed
    check_unique_ids(mixed, f"dataset.mix ({split} split)")
    kept = {id(example) for example in mixed}
    order = {id(example): position for position, example in enumerate(mixed)}
    reports = []
    for part, offered, examples in zip(section.mix, available, chosen, strict=True):
        final = sorted((e for e in examples if id(e) in kept), key=lambda e: order[id(e)])
        digest = hashlib.sha256(dumps_jsonl(final).encode("utf-8")).hexdigest()
        reports.append(PartReport(part.name, part.weight, len(offered), len(final), digest))
    return LoadedSplit(mixed, tuple(reports))


def mixture_splits(registry: DatasetRegistry, mix: Sequence[MixPart]) -> tuple[str, ...]:
    """The splits a mixture of ``mix`` offers: ``train``, ``eval``, and ``ood`` when at
    least one part offers it."""
    with_ood = any(OOD_SPLIT in split_names(registry, part.name) for part in mix)
    return (*TRAIN_EVAL, OOD_SPLIT) if with_ood else TRAIN_EVAL


def check_part_names(registry: DatasetRegistry, mix: Sequence[MixPart]) -> None:
    """Raise :class:`ConfigError` naming the first part whose dataset is not installed."""
    for index, part in enumerate(mix):
        try:
            registry.entry(part.name)
        except UnknownNameError as exc:
            raise ConfigError(f"dataset.mix[{index}].name: {exc}") from None


def _load_parts(
    registry: DatasetRegistry, section: DatasetSection, split: str, transforms: TransformRegistry
) -> list[list[ReasoningExample]]:
    """Each part's ``split``; ``ood`` is whole (no part ``limit``), and empty for a part
    that offers none."""
    loaded: list[list[ReasoningExample]] = []
    for index, part in enumerate(section.mix):
        if split == OOD_SPLIT and OOD_SPLIT not in split_names(registry, part.name):
            loaded.append([])
            continue
        try:
            loaded.append(load_split(registry, part.name, split, seed=section.seed,
                                     options=part.options,
                                     limit=None if split == OOD_SPLIT else part.limit,
                                     transforms=transforms))  # fmt: skip
        except DataError as exc:
            raise DataError(f"dataset.mix[{index}] ({part.name}): {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"dataset.mix[{index}] ({part.name}): {exc}") from None
    return loaded


def _distinct(
    parts: list[list[ReasoningExample]], excluded: set[str]
) -> list[list[ReasoningExample]]:
    """Each part without the questions in ``excluded`` or seen in an earlier item."""
    seen = set(excluded)
    result = []
    for examples in parts:
        kept = []
        for example in examples:
            key = normalise_question(example.question)
            if key not in seen:
                seen.add(key)
                kept.append(example)
        result.append(kept)
    return result


def _draw(
    candidates: list[list[ReasoningExample]], section: DatasetSection, split: str
) -> list[list[ReasoningExample]]:
    """Each part's seeded sample, sized by the weights (items keep the part's order)."""
    for index, (part, examples) in enumerate(zip(section.mix, candidates, strict=True)):
        if not examples:
            raise DataError(
                f"dataset.mix[{index}] ({part.name}): no {split} items left once questions "
                "already in an earlier part or in any eval split were removed"
            )
    total_weight = sum(part.weight for part in section.mix)
    shares = [part.weight / total_weight for part in section.mix]
    total = min(len(examples) / share for examples, share in zip(candidates, shares, strict=True))
    chosen = []
    for index, (examples, share) in enumerate(zip(candidates, shares, strict=True)):
        count = max(1, min(len(examples), round(total * share)))
        positions = list(range(len(examples)))
        random.Random(derived_seed(section.seed, "mix", split, str(index))).shuffle(positions)
        picked = sorted(positions[:count])
        chosen.append([examples[position] for position in picked])
    return chosen
