"""``dev-reasoning-v2``: seeded worked problems for learning to show the work.

Twelve families (rates, percentages, unit prices, column-wise addition and subtraction,
partial-product multiplication, string reversal, sorting, syllogisms, counting, case
changes and edge cases), each drawn from its own ``random.Random`` so one family's changes
do not move another's items. Questions are unique across both splits (compared with
whitespace collapsed). A third split, ``ood``, asks the same skills in ways training never
shows (:mod:`tunix_datasets.ood`). Items whose answer is a case or an order (case changes, reversals,
sorted words) carry ``meta.answer_match: exact``; sorted numbers carry ``list``. Any
change to what is generated must bump ``GENERATOR_VERSION``; a test pins the export's
checksum.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import attrs

from tunix_core.config import one_of
from tunix_core.data.record import DIFFICULTIES, ExampleMeta, ReasoningExample
from tunix_core.data.splits import TRAIN_EVAL, check_request, derived_seed
from tunix_core.protocols import TransformRegistry
from tunix_datasets import ood, wordings, worked

NAME = "dev-reasoning-v2"
GENERATOR_VERSION = "2.2.0"  # 2.1.0: meta.answer_match; 2.2.0: the ood split
SPLITS = (*TRAIN_EVAL, "ood")
# The families' random streams are seeded from this, not from GENERATOR_VERSION, so a
# version that changes only metadata keeps every question, step, answer and id (runs
# before and after it train and evaluate on the same items). Change it only to redraw them.
SEED_VERSION = "2.0.0"

Maker = Callable[[random.Random, int], tuple[worked.Worked, str]]


def cycling(family: worked.Family) -> Maker:
    """Difficulties take turns, so every family has easy, medium and hard items."""

    def make(rng: random.Random, index: int) -> tuple[worked.Worked, str]:
        difficulty = DIFFICULTIES[index % len(DIFFICULTIES)]
        return family(rng, difficulty), difficulty

    return make


def edge(rng: random.Random, index: int) -> tuple[worked.Worked, str]:
    return worked.edge_case(rng, worked.EDGE_KINDS[index % len(worked.EDGE_KINDS)])


@attrs.frozen
class FamilySpec:
    name: str
    section: str
    make: Maker
    train: int
    eval: int


FAMILIES = (
    FamilySpec("distance_speed_time", "core", cycling(worked.distance_speed_time), 84, 16),
    FamilySpec("percentage", "core", cycling(worked.percentage), 84, 16),
    FamilySpec("unit_price", "core", cycling(worked.unit_price), 84, 16),
    FamilySpec("addition", "trace_sensitive", cycling(worked.addition), 84, 16),
    FamilySpec("subtraction", "trace_sensitive", cycling(worked.subtraction), 84, 16),
    FamilySpec("multiplication", "trace_sensitive", cycling(worked.multiplication), 84, 16),
    FamilySpec("string_reversal", "core", cycling(worked.string_reversal), 84, 16),
    FamilySpec("sorting", "core", cycling(worked.sorting), 84, 16),
    FamilySpec("syllogism", "core", cycling(worked.syllogism), 84, 16),
    FamilySpec("word_count", "core", cycling(worked.word_count), 84, 16),
    FamilySpec("case_change", "core", cycling(worked.case_change), 84, 16),
    FamilySpec("edge_case", "edge_case", edge, 76, 24),
)


def question_key(question: str) -> str:
    """What makes two questions the same: their words, whatever the whitespace."""
    return " ".join(question.split())


@lru_cache(maxsize=4)
def generate(seed: int) -> dict[str, tuple[ReasoningExample, ...]]:
    """Both splits for ``seed``; families interleaved so any prefix mixes them."""
    return generate_train_eval(seed, NAME, SEED_VERSION, FAMILIES, "dev2")


def generate_train_eval(
    seed: int, name: str, seed_version: str, families: Sequence[FamilySpec], id_prefix: str
) -> dict[str, tuple[ReasoningExample, ...]]:
    """The train and eval splits of dataset ``name`` drawn from ``families``."""
    seen: set[str] = set()
    by_family: dict[str, list[list[ReasoningExample]]] = {split: [] for split in TRAIN_EVAL}
    for family in families:
        rng = random.Random(derived_seed(seed, name, seed_version, family.name))
        for split, count in (("eval", family.eval), ("train", family.train)):
            items: list[ReasoningExample] = []
            attempts = 0
            while len(items) < count:
                attempts += 1
                if attempts > 50 * count:
                    raise RuntimeError(f"{family.name}: too few distinct questions for {split}")
                problem, difficulty = family.make(rng, len(items))
                key = question_key(problem.question)
                if key in seen:
                    continue
                seen.add(key)
                items.append(
                    ReasoningExample(
                        id=f"{id_prefix}-{split}-{family.name}-{len(items):03d}",
                        question=problem.question,
                        steps=problem.steps,
                        answer=problem.answer,
                        meta=ExampleMeta(
                            family.name, family.section, difficulty, name, problem.answer_match
                        ),
                    )
                )
            by_family[split].append(items)
    return {split: tuple(_interleave(lists)) for split, lists in by_family.items()}


def _interleave(lists: Sequence[Sequence[ReasoningExample]]) -> list[ReasoningExample]:
    longest = max(len(items) for items in lists)
    return [items[i] for i in range(longest) for items in lists if i < len(items)]


@attrs.frozen
class DevReasoningOptions:
    """dev-reasoning is fixed by its seed; ``wordings: varied`` asks each training
    question in one of several wordings (:mod:`tunix_datasets.wordings`)."""

    wordings: str = attrs.field(default="one", validator=one_of("one", "varied"))


class DevReasoningV2:
    """The default training and evaluation data (see the module docstring)."""

    description = "Seeded worked problems with the work shown: 1000 train / 200 eval / 322 ood"
    version = GENERATOR_VERSION

    def splits(self) -> Sequence[str]:
        return SPLITS

    def load(
        self,
        split: str,
        *,
        argument: str | None,
        seed: int,
        options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[ReasoningExample]:
        chosen = check_request(NAME, split, argument, options, DevReasoningOptions, SPLITS)
        if split == "ood":
            return list(ood.generate(seed, ood.V2_TRACES, "dev2", NAME))
        if split == "train" and chosen.wordings == "varied":
            return wordings.reword(generate(seed)[split], seed, NAME)
        return list(generate(seed)[split])
