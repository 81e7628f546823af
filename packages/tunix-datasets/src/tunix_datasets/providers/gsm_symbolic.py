"""``gsm-symbolic``: grade-school word problems from reasoning-gym's ``gsm_symbolic``
generator (templates of GSM8K problems with fresh names and numbers), each with a worked
solution (``metadata.answer_cot``) and a numeric answer.

Needs the ``gsm-symbolic`` extra (PyPI ``reasoning-gym``). Items are drawn with the
dataset seed; eval takes the first ``eval_size`` distinct questions and train the next
``train_size``, so no question is in both splits.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import attrs

from tunix_core.config import FieldRuleError
from tunix_core.data.record import ExampleMeta, FieldError, ReasoningExample
from tunix_core.data.splits import TRAIN_EVAL, check_request
from tunix_core.errors import DataError
from tunix_core.protocols import TransformRegistry

NAME = "gsm-symbolic"
_PREAMBLES = ("Let's solve this step by step:",)
_BULLETS = ("• ", "- ", "* ")


def _positive(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value <= 0:
        raise FieldRuleError(attribute.name, f"must be > 0, got {value!r}")


@attrs.frozen
class GsmSymbolicOptions:
    train_size: int = attrs.field(default=1000, validator=_positive)
    eval_size: int = attrs.field(default=200, validator=_positive)


def solution_steps(answer_cot: str) -> tuple[str, ...]:
    """The lines of a worked solution, without the ``#### N`` answer line, blank lines,
    the generic preamble, or bullet markers."""
    steps: list[str] = []
    for raw in answer_cot.splitlines():
        line = raw.strip()
        if not line or line.startswith("####") or line in _PREAMBLES:
            continue
        for bullet in _BULLETS:
            line = line.removeprefix(bullet)
        steps.append(line.strip())
    return tuple(steps)


def entry_to_example(entry: Mapping[str, Any], example_id: str, source: str) -> ReasoningExample:
    """One reasoning-gym entry: ``question``, ``answer`` and ``metadata.answer_cot``."""
    steps = solution_steps(entry["metadata"]["answer_cot"])
    return ReasoningExample(
        id=example_id,
        question=entry["question"].strip(),
        steps=steps,
        answer=str(entry["answer"]).strip(),
        meta=ExampleMeta(
            category="gsm_symbolic",
            section="core",
            difficulty="easy" if len(steps) <= 3 else "medium" if len(steps) <= 6 else "hard",
            source=source,
        ),
    )


def distinct_splits(
    entry_at: Callable[[int], Mapping[str, Any]],
    size: int,
    wanted: Mapping[str, int],
    to_example: Callable[[Mapping[str, Any], str, int], ReasoningExample],
    *,
    where: str,
) -> dict[str, list[ReasoningExample]]:
    """reasoning-gym entries ``entry_at(0 .. size - 1)`` into ``wanted`` eval items first,
    then train items, skipping a question seen before: so no question is in both splits.
    ``to_example(entry, split, number)`` builds an item. A bad entry, or fewer distinct
    items than wanted, is a DataError naming ``where``."""
    seen: set[str] = set()
    splits: dict[str, list[ReasoningExample]] = {"eval": [], "train": []}
    for index in range(size):
        split = "eval" if len(splits["eval"]) < wanted["eval"] else "train"
        if len(splits[split]) >= wanted[split]:
            break
        entry = entry_at(index)
        if entry["question"] in seen:
            continue
        seen.add(entry["question"])
        try:
            splits[split].append(to_example(entry, split, len(splits[split])))
        except FieldError as exc:
            raise DataError(f"{where} item {index}: {exc}") from None
    for split, items in splits.items():
        if len(items) < wanted[split]:
            raise DataError(f"{where}: only {len(items)} distinct {split} items; ask for fewer")
    return splits


@lru_cache(maxsize=4)
def generate(seed: int, train_size: int, eval_size: int) -> dict[str, tuple[ReasoningExample, ...]]:
    try:
        from reasoning_gym.arithmetic.gsm_symbolic import (
            GSMSymbolicDataset,
            GSMSymbolicDatasetConfig,
        )
    except ImportError:
        raise DataError(
            "dataset 'gsm-symbolic' needs its extra: pip install 'tunix-datasets[gsm-symbolic]'"
        ) from None
    from importlib.metadata import version

    source = f"reasoning-gym {version('reasoning-gym')} gsm_symbolic"
    wanted = {"eval": eval_size, "train": train_size}
    # Twice the items needed: the templates rarely repeat a question.
    size = 2 * (train_size + eval_size)
    generator = GSMSymbolicDataset(GSMSymbolicDatasetConfig(seed=seed, size=size))
    splits = distinct_splits(
        lambda index: generator[index], size, wanted,
        lambda entry, split, number: entry_to_example(
            entry, f"gsm-symbolic-{split}-{number:04d}", source
        ),
        where=f"gsm-symbolic (seed {seed})",
    )  # fmt: skip
    return {split: tuple(items) for split, items in splits.items()}


class GsmSymbolicProvider:
    """GSM-Symbolic word problems (see the module docstring)."""

    description = "GSM-Symbolic grade-school word problems with worked solutions (reasoning-gym)"

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
        parsed = check_request(NAME, split, argument, options, GsmSymbolicOptions, TRAIN_EVAL)
        return list(generate(seed, parsed.train_size, parsed.eval_size)[split])
