"""``dev-reasoning-v3``: dev-reasoning-v2's families and question forms, with steps a small
model can follow token by token (:mod:`tunix_datasets.traced`).

Addition, subtraction and multiplication go one digit at a time with every carry or
borrow written out, reversals and case changes spell the letters, sorting keeps a running
comparison and counting numbers every word or letter. Rates, percentages, unit prices,
syllogisms and edge cases keep v2's steps (already one operation per line). The items
are drawn from v3's own seeds, so they are not v2's questions; the ``ood`` split asks the
same questions as v2's, shown in v3's style. Any change to what is generated must bump
``GENERATOR_VERSION``; a test pins the checksums.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from tunix_core.data.record import ReasoningExample
from tunix_core.data.splits import check_request
from tunix_core.protocols import TransformRegistry
from tunix_datasets import ood, traced, wordings, worked
from tunix_datasets.providers.dev_reasoning import (
    SPLITS,
    DevReasoningOptions,
    FamilySpec,
    cycling,
    edge,
    generate_train_eval,
)

NAME = "dev-reasoning-v3"
GENERATOR_VERSION = "3.0.0"
# The families' random streams are seeded from this, as in v2: a version that changes only
# metadata keeps every item.
SEED_VERSION = "3.0.0"

FAMILIES = (
    FamilySpec("distance_speed_time", "core", cycling(worked.distance_speed_time), 84, 16),
    FamilySpec("percentage", "core", cycling(worked.percentage), 84, 16),
    FamilySpec("unit_price", "core", cycling(worked.unit_price), 84, 16),
    FamilySpec("addition", "trace_sensitive", cycling(traced.addition), 84, 16),
    FamilySpec("subtraction", "trace_sensitive", cycling(traced.subtraction), 84, 16),
    FamilySpec("multiplication", "trace_sensitive", cycling(traced.multiplication), 84, 16),
    FamilySpec("string_reversal", "core", cycling(traced.string_reversal), 84, 16),
    FamilySpec("sorting", "core", cycling(traced.sorting), 84, 16),
    FamilySpec("syllogism", "core", cycling(worked.syllogism), 84, 16),
    FamilySpec("word_count", "core", cycling(traced.word_count), 84, 16),
    FamilySpec("case_change", "core", cycling(traced.case_change), 84, 16),
    FamilySpec("edge_case", "edge_case", edge, 76, 24),
)


@lru_cache(maxsize=4)
def generate(seed: int) -> dict[str, tuple[ReasoningExample, ...]]:
    """Train and eval for ``seed``; families interleaved so any prefix mixes them."""
    return generate_train_eval(seed, NAME, SEED_VERSION, FAMILIES, "dev3")


class DevReasoningV3:
    """dev-reasoning-v2 with steps spelled out digit by digit and letter by letter."""

    description = (
        "dev-reasoning-v2 with digit-by-digit and letter-by-letter steps: "
        "1000 train / 200 eval / 322 ood"
    )
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
            return list(ood.generate(seed, ood.V3_TRACES, "dev3", NAME))
        if split == "train" and chosen.wordings == "varied":
            return wordings.reword(generate(seed)[split], seed, NAME)
        return list(generate(seed)[split])
