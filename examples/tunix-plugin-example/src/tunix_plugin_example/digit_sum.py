"""A seeded dataset of digit sums with the running total as the worked steps."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.errors import DataError
from tunix_core.protocols import TransformRegistry

SPLIT_SIZES = {"train": 200, "eval": 40}


def digit_sum_example(number: int, split: str, index: int) -> ReasoningExample:
    digits = [int(d) for d in str(number)]
    steps, total = [], digits[0]
    for digit in digits[1:]:
        steps.append(f"{total} + {digit} = {total + digit}")
        total += digit
    difficulty = "easy" if len(digits) <= 3 else "medium" if len(digits) <= 5 else "hard"
    return ReasoningExample(
        id=f"digit-sum-{split}-{index:04d}",
        question=f"What is the sum of the digits of {number}?",
        steps=(f"The digits are {', '.join(map(str, digits))}.", *steps),
        answer=str(total),
        meta=ExampleMeta(
            category="digit_sum",
            section="core",
            difficulty=difficulty,
            source="tunix-plugin-example",
            answer_match="integer",  # this plugin's own answer check
        ),
    )


class DigitSumDataset:
    description = "Sum the digits of a number (example plugin)."

    def splits(self) -> Sequence[str]:
        return tuple(SPLIT_SIZES)

    def load(
        self,
        split: str,
        *,
        argument: str | None,
        seed: int,
        options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[ReasoningExample]:
        if split not in SPLIT_SIZES:
            raise DataError(
                f"digit-sum has no split {split!r}; available: {', '.join(SPLIT_SIZES)}"
            )
        # Both splits come from one shuffled pool, so no number is in both.
        pool = random.Random(seed).sample(range(10, 10_000_000), sum(SPLIT_SIZES.values()))
        start = 0 if split == "train" else SPLIT_SIZES["train"]
        numbers = pool[start : start + SPLIT_SIZES[split]]
        return [digit_sum_example(n, split, i) for i, n in enumerate(numbers)]
