"""``champ``: CHAMP competition mathematics (PyPI ``champ-dataset``), 270 problems in five
categories, each with a step-by-step solution and a final answer.

Needs the ``champ`` extra. The package ships one data file (``v0``); eval is a seeded,
per-category share of the problems (``dataset.options.eval_fraction``, default 0.2).
Many solutions are long: expect rendered examples of several hundred tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from tunix_core.config import FieldRuleError
from tunix_core.data.record import ExampleMeta, FieldError, ReasoningExample
from tunix_core.data.splits import TRAIN_EVAL, check_request, derived_seed, seeded_split
from tunix_core.errors import DataError
from tunix_core.protocols import TransformRegistry

NAME = "champ"
DATA_VERSION = "v0"


def _fraction(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value < 1:
        raise FieldRuleError(attribute.name, f"must be between 0 and 1 (exclusive), got {value!r}")


@attrs.frozen
class ChampOptions:
    eval_fraction: float = attrs.field(default=0.2, validator=_fraction)


def difficulty_from_steps(count: int) -> str:
    """CHAMP has no difficulty labels; a longer solution stands in for a harder problem."""
    return "easy" if count <= 3 else "medium" if count <= 6 else "hard"


def problem_to_example(problem: Any) -> ReasoningExample:
    """One ``champ_dataset.Problem`` (identifier, text, category, solution.steps, answer)."""
    steps = tuple(s.text.strip() for s in problem.solution.steps if s.text and s.text.strip())
    return ReasoningExample(
        id=f"champ-{problem.identifier}",
        question=problem.text.strip(),
        steps=steps,
        answer=problem.answer.strip(),
        meta=ExampleMeta(
            category=problem.category.lower(),
            section="core",
            difficulty=difficulty_from_steps(len(steps)),
            source=f"champ-dataset {DATA_VERSION}",
        ),
    )


def _load_problems() -> list[Any]:
    try:
        import champ_dataset
    except ImportError:
        raise DataError(
            "dataset 'champ' needs its extra: pip install 'tunix-datasets[champ]'"
        ) from None
    dataset = champ_dataset.load(DATA_VERSION)
    dataset.sort()
    return list(dataset.problems.values())


class ChampProvider:
    """CHAMP problems with their worked solutions (see the module docstring)."""

    description = "CHAMP competition mathematics with step-by-step solutions (270 problems)"
    version = DATA_VERSION

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
        parsed = check_request(NAME, split, argument, options, ChampOptions, TRAIN_EVAL)
        by_category: dict[str, list[ReasoningExample]] = {}
        for problem in _load_problems():
            try:
                example = problem_to_example(problem)
            except FieldError as exc:
                raise DataError(f"champ problem {problem.identifier}: {exc}") from None
            by_category.setdefault(example.meta.category, []).append(example)
        chosen: list[ReasoningExample] = []
        for category, examples in by_category.items():
            # A seed per category, so each category keeps its share in eval.
            split_seed = derived_seed(seed, NAME, category)
            chosen += seeded_split(examples, parsed.eval_fraction, split_seed)[split]
        return chosen
