"""``reasoning-gym:NAME[,NAME...]``: items of any reasoning-gym tasks (arithmetic, logic,
puzzles, string and graph problems...), generated offline from the dataset seed, each
judged by its task's own ``score_answer``.

Needs the ``reasoning-gym`` extra. Every task is generated with its default settings and
a seed derived from ``dataset.seed`` and the task name. Per task, eval takes the first
``eval_size`` distinct questions and train the next ``train_size``, so no question is in
both splits; the tasks are interleaved, so ``eval.limit`` still samples all of them.

Items name the ``reasoning-gym`` answer check, which rebuilds the task's scorer from
``meta.extra``: ``reasoning_gym_task`` (the task name) and ``reasoning_gym_entry`` (the
generated entry as JSON: question, answer, metadata). A task is refused when its entries
have no reference answer or when its scorer does not accept its own answer once the
entry went through JSON (``arc_agi`` needs tuples, for one).

Only tasks that ship a worked solution (``metadata.answer_cot``, as ``gsm_symbolic``) give
items real reasoning; the others get one line saying so, which suits evaluation and GRPO
(whose ``answer`` reward is the task's scorer) more than supervised fine-tuning.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from functools import cache, lru_cache
from importlib.metadata import version
from itertools import zip_longest
from typing import Any

import attrs

from tunix_core.config import FieldRuleError
from tunix_core.data.record import ExampleMeta, FieldError, ReasoningExample
from tunix_core.data.splits import TRAIN_EVAL, check_request, derived_seed, require_split
from tunix_core.errors import DataError
from tunix_core.protocols import AnswerOptions, AnswerVerdict, TransformRegistry
from tunix_datasets.providers.gsm_symbolic import distinct_splits, solution_steps

NAME = "reasoning-gym"
ANSWER_CHECK = "reasoning-gym"
TASK, ENTRY = "reasoning_gym_task", "reasoning_gym_entry"  # meta.extra names
LISTED_TASKS = 12  # task names an error message lists
EXTRA_MESSAGE = f"dataset {NAME!r} needs its extra: pip install 'tunix-datasets[reasoning-gym]'"


def _positive(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if value <= 0:
        raise FieldRuleError(attribute.name, f"must be > 0, got {value!r}")


@attrs.frozen
class ReasoningGymOptions:
    """Items per task and split."""

    train_size: int = attrs.field(default=500, validator=_positive)
    eval_size: int = attrs.field(default=100, validator=_positive)


def _registry() -> Mapping[str, Any]:
    try:
        from reasoning_gym.factory import DATASETS
    except ImportError:
        raise DataError(EXTRA_MESSAGE) from None
    tasks: Mapping[str, Any] = DATASETS
    return tasks


def parse_tasks(argument: str | None) -> tuple[str, ...]:
    """The task names of ``reasoning-gym:NAME[,NAME...]``, each installed and named once."""
    if not argument or not argument.strip():
        raise DataError(f"dataset {NAME!r} needs task names: {NAME}:NAME[,NAME...], "
                        f"e.g. {NAME}:leg_counting,basic_arithmetic")  # fmt: skip
    names = tuple(name.strip() for name in argument.split(","))
    installed = _registry()
    for name in names:
        if not name:
            raise DataError(f"dataset {NAME!r}: an empty task name in {NAME}:{argument}")
        if names.count(name) > 1:
            raise DataError(f"dataset {NAME!r}: task {name!r} is named twice in {NAME}:{argument}")
        if name not in installed:
            close = difflib.get_close_matches(name, installed, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            shown = ", ".join(sorted(installed)[:LISTED_TASKS])
            raise DataError(f"dataset {NAME!r}: unknown task {name!r}.{hint} Available "
                            f"({len(installed)}): {shown}, ...")  # fmt: skip
    return names


@cache
def scorer(task: str) -> Callable[[str, dict[str, Any]], float]:
    """The task's ``score_answer`` (a default-configured dataset, as items are generated)."""
    try:
        from reasoning_gym.factory import get_score_answer_fn
    except ImportError:
        raise DataError(EXTRA_MESSAGE) from None
    score: Callable[[str, dict[str, Any]], float] = get_score_answer_fn(task)
    return score


def _score(task: str, answer: str, entry: dict[str, Any]) -> float:
    # Scorers parse free text and some raise on text they cannot read (prime_factorization
    # calls int() on it): an answer that makes its scorer fail is a wrong answer.
    try:
        return float(scorer(task)(answer, entry))
    except Exception:
        return 0.0


def entry_to_example(
    task: str, entry: Mapping[str, Any], example_id: str, source: str
) -> ReasoningExample:
    """One generated entry (``question``, ``answer``, ``metadata``) as a record."""
    if entry.get("answer") is None:
        raise FieldError("answer", "the task gives no reference answer (it accepts many)")
    stored = json.loads(json.dumps(dict(entry), ensure_ascii=False))
    answer = str(entry["answer"]).strip()
    if _score(task, answer, stored) < 1.0:
        raise FieldError("answer", "the task's scorer refuses its own answer once the entry is "
                                   "stored as JSON, so tunix cannot judge answers to it")  # fmt: skip
    worked = stored["metadata"].get("answer_cot")
    steps = solution_steps(worked) if isinstance(worked, str) else ()
    return ReasoningExample(
        id=example_id,
        question=str(entry["question"]).strip(),
        steps=steps,
        reasoning=None if steps else f"reasoning-gym's {task} task has no worked solution.",
        answer=answer,
        meta=ExampleMeta(
            category=task,
            section=NAME,
            difficulty="medium",  # the task's default settings: no finer label
            source=source,
            answer_match=ANSWER_CHECK,
            extra={TASK: task, ENTRY: json.dumps(stored, ensure_ascii=False, sort_keys=True)},
        ),
    )


def _generate_task(
    task: str, seed: int, train_size: int, eval_size: int
) -> dict[str, list[ReasoningExample]]:
    import reasoning_gym

    source = f"reasoning-gym {version('reasoning-gym')} {task}"
    wanted = {"eval": eval_size, "train": train_size}
    size = 2 * (train_size + eval_size)  # room for repeated questions
    # reasoning-gym seeds numpy as well as random: keep the seed within 32 bits.
    task_seed = derived_seed(seed, NAME, task) % 2**32
    try:
        generator = reasoning_gym.create_dataset(task, seed=task_seed, size=size)
    except Exception as exc:  # each task validates its settings its own way
        raise DataError(f"{NAME}: task {task!r} cannot be generated with its default "
                        f"settings: {exc}") from None  # fmt: skip
    splits = distinct_splits(
        lambda index: generator[index], size, wanted,
        lambda entry, split, number: entry_to_example(
            task, entry, f"rg-{task}-{split}-{number:04d}", source
        ),
        where=f"{NAME}: task {task!r}",
    )  # fmt: skip
    return splits


@lru_cache(maxsize=4)
def generate(
    tasks: tuple[str, ...], seed: int, train_size: int, eval_size: int
) -> dict[str, tuple[ReasoningExample, ...]]:
    """Both splits of ``tasks``, the tasks interleaved item by item."""
    per_task = [_generate_task(task, seed, train_size, eval_size) for task in tasks]
    return {
        split: tuple(
            example
            for row in zip_longest(*(splits[split] for splits in per_task))
            for example in row
            if example is not None
        )
        for split in TRAIN_EVAL
    }


class ReasoningGymProvider:
    """reasoning-gym tasks by name (see the module docstring)."""

    description = "reasoning-gym tasks by name, each judged by its own scorer"

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
        require_split(NAME, split, TRAIN_EVAL)
        tasks = parse_tasks(argument)
        parsed = check_request(NAME, split, None, options, ReasoningGymOptions, TRAIN_EVAL)
        return list(generate(tasks, seed, parsed.train_size, parsed.eval_size)[split])


class ReasoningGymCheck:
    """The ``reasoning-gym`` answer check: the item's task scores the answer against the
    entry it was generated from (``meta.extra``); a score of 1 is correct."""

    takes_meta = True

    def __call__(
        self, answer: str, expected: str, options: AnswerOptions, *, meta: Mapping[str, Any]
    ) -> AnswerVerdict:
        task, entry = meta.get(TASK), meta.get(ENTRY)
        if not isinstance(task, str) or not isinstance(entry, str):
            raise ValueError(f"needs meta.{TASK} and meta.{ENTRY} (items of the {NAME} "
                             "dataset carry them)")  # fmt: skip
        if task not in _registry():
            raise ValueError(f"meta.{TASK}: reasoning-gym has no task {task!r}")
        try:
            stored = json.loads(entry)
        except json.JSONDecodeError as exc:
            raise ValueError(f"meta.{ENTRY} is not JSON: {exc}") from None
        return AnswerVerdict(_score(task, answer, stored) >= 1.0, ANSWER_CHECK)


check_reasoning_gym = ReasoningGymCheck()
