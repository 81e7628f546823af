"""A reward for the digit-sum dataset: credit for the running-sum steps a completion
gets right, so a policy is rewarded for sound working, not only for its final answer."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tunix_core.protocols import RunContext

# One step of the dataset's worked solution: "12 + 7 = 19".
SUM_STEP = re.compile(r"(\d+)\s*\+\s*(\d+)\s*=\s*(\d+)")


def digit_sum_bonus(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
    *,
    context: RunContext,
) -> list[float]:
    """The share of ``a + b = c`` steps in a completion whose sum is right; ``NaN`` for
    items that are not digit sums (``meta.category``) and for completions with no step."""
    scores = []
    for completion, item_meta in zip(completions, meta, strict=True):
        steps = SUM_STEP.findall(completion)
        if item_meta.get("category") != "digit_sum" or not steps:
            scores.append(math.nan)
            continue
        right = sum(int(a) + int(b) == int(c) for a, b, c in steps)
        scores.append(right / len(steps))
    return scores
