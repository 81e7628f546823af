"""``golden-v2``: 100 tiny fixed sanity items (ten kinds, ten items each).

The items do not depend on the run's seed. Both splits hold the same items: golden-v2
checks that a pipeline can learn the format and answers it is shown (a trained model
should score near 100 % on it); use ``dev-reasoning-v2`` to measure generalisation.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import attrs

from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.data.splits import TRAIN_EVAL, check_request
from tunix_core.protocols import TransformRegistry
from tunix_datasets.worked import SHORT_WORDS, Worked

NAME = "golden-v2"
GENERATOR_VERSION = "2.1.0"  # 2.1.0: meta.answer_match exact on reversals and uppercase
_SEED = 2025  # fixed: golden items never change without a version bump
ITEMS_PER_KIND = 10


def _add(rng: random.Random) -> Worked:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    return Worked(f"What is {a} + {b}?", (f"{a} + {b} = {a + b}",), str(a + b))


def _subtract(rng: random.Random) -> Worked:
    a = rng.randint(2, 19)
    b = rng.randint(1, a - 1)
    return Worked(f"What is {a} - {b}?", (f"{a} - {b} = {a - b}",), str(a - b))


def _multiply(rng: random.Random) -> Worked:
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    return Worked(f"What is {a} × {b}?", (f"{a} × {b} = {a * b}",), str(a * b))


def _larger(rng: random.Random) -> Worked:
    a, b = rng.sample(range(1, 100), 2)
    big, small = max(a, b), min(a, b)
    return Worked(f"Which is larger, {a} or {b}?", (f"{big} > {small}",), str(big))


def _next_number(rng: random.Random) -> Worked:
    n = rng.randint(1, 98)
    return Worked(f"What number comes after {n}?", (f"{n} + 1 = {n + 1}",), str(n + 1))


def _double(rng: random.Random) -> Worked:
    n = rng.randint(2, 49)
    return Worked(f"What is double {n}?", (f"{n} × 2 = {n * 2}",), str(n * 2))


def _even(rng: random.Random) -> Worked:
    n = rng.randint(2, 60)
    verdict = "yes" if n % 2 == 0 else "no"
    remainder = "no remainder" if n % 2 == 0 else "remainder 1"
    return Worked(
        f"Is {n} an even number? Answer yes or no.",
        (f"{n} ÷ 2 = {n // 2} with {remainder}", f"so {n} is {'even' if n % 2 == 0 else 'odd'}"),
        verdict,
    )


def _reverse(rng: random.Random) -> Worked:
    word = rng.choice(SHORT_WORDS)
    return Worked(
        f'Reverse the string "{word}".',
        (f"letters: {' '.join(word)}", f"from the end: {' '.join(reversed(word))}"),
        word[::-1],
        "exact",
    )


def _letters(rng: random.Random) -> Worked:
    word = rng.choice(SHORT_WORDS) + rng.choice(SHORT_WORDS)
    return Worked(
        f'How many letters are in "{word}"?',
        (f"spell it: {'-'.join(word)}", f"that is {len(word)} letters"),
        str(len(word)),
    )


def _uppercase(rng: random.Random) -> Worked:
    word = rng.choice(SHORT_WORDS)
    return Worked(f'Write "{word}" in uppercase.', (f"{word} → {word.upper()}",), word.upper(),
                  "exact")  # fmt: skip


KINDS: tuple[tuple[str, Callable[[random.Random], Worked]], ...] = (
    ("add", _add),
    ("subtract", _subtract),
    ("multiply", _multiply),
    ("larger", _larger),
    ("next_number", _next_number),
    ("double", _double),
    ("even", _even),
    ("reverse", _reverse),
    ("letters", _letters),
    ("uppercase", _uppercase),
)


@lru_cache(maxsize=1)
def golden_items() -> tuple[ReasoningExample, ...]:
    rng = random.Random(_SEED)
    seen: set[str] = set()
    per_kind: list[list[ReasoningExample]] = []
    for kind, make in KINDS:
        items: list[ReasoningExample] = []
        while len(items) < ITEMS_PER_KIND:
            problem = make(rng)
            if problem.question in seen:
                continue
            seen.add(problem.question)
            items.append(
                ReasoningExample(
                    id=f"golden-{kind}-{len(items):02d}",
                    question=problem.question,
                    steps=problem.steps,
                    answer=problem.answer,
                    meta=ExampleMeta(f"golden_{kind}", "core", "easy", NAME, problem.answer_match),
                )
            )
        per_kind.append(items)
    return tuple(items[i] for i in range(ITEMS_PER_KIND) for items in per_kind)


@attrs.frozen
class GoldenOptions:
    """golden-v2 is fixed; it takes no options."""


class GoldenV2:
    """Fixed sanity items (see the module docstring)."""

    description = "100 tiny fixed sanity items; train and eval hold the same items"
    version = GENERATOR_VERSION

    def splits(self) -> Sequence[str]:
        return TRAIN_EVAL

    def load(
        self,
        split: str,
        *,
        argument: str | None,
        seed: int,
        options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[ReasoningExample]:
        check_request(NAME, split, argument, options, GoldenOptions, TRAIN_EVAL)
        return list(golden_items())
