"""``reasoning-gym:NAME[,NAME...]``: reasoning-gym tasks generated offline with a seed, each
judged by its own scorer through the ``reasoning-gym`` answer check."""

from __future__ import annotations

import json

import pytest

from tunix_core.data.record import ReasoningExample
from tunix_core.errors import ConfigError, DataError
from tunix_core.evaluation import check_answer, example_meta
from tunix_core.protocols import AnswerCheckRegistry, AnswerOptions, Prediction, TransformRegistry
from tunix_datasets.providers import BUILTIN_ANSWER_CHECKS
from tunix_datasets.providers.reasoning_gym_tasks import (
    ENTRY,
    TASK,
    ReasoningGymProvider,
    check_reasoning_gym,
)
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

# Needs tunix-datasets[reasoning-gym] (nox's core tests install it).
TASKS = "leg_counting,basic_arithmetic"
SIZES = {"train_size": 12, "eval_size": 4}


def load(split: str, argument: str | None = TASKS, seed: int = 0) -> list[ReasoningExample]:
    return ReasoningGymProvider().load(split, argument=argument, seed=seed, transforms=TRANSFORMS, options=SIZES)


def test_two_tasks_interleaved_deterministic_and_disjoint() -> None:
    train, evaluation = load("train"), load("eval")
    assert (len(train), len(evaluation)) == (24, 8)
    assert [e.meta.category for e in evaluation[:4]] == ["leg_counting", "basic_arithmetic"] * 2
    assert load("train") == train  # the same seed gives the same items
    assert load("train", seed=1) != train
    assert not {e.question for e in train} & {e.question for e in evaluation}
    for example in train + evaluation:
        assert example.meta.answer_match == "reasoning-gym"
        assert example.meta.extra[TASK] == example.meta.category
        assert json.loads(example.meta.extra[ENTRY])["answer"].strip() == example.answer
        assert example.meta.source.startswith("reasoning-gym 0.1.")


def _verdict(example: ReasoningExample, answer: str) -> bool:
    checks = AnswerCheckRegistry()
    name, target, _ = next(c for c in BUILTIN_ANSWER_CHECKS if c[0] == "reasoning-gym")
    checks.register(name, target)
    prediction = Prediction(example.id, "", "", example.answer, example_meta(example))
    return check_answer(prediction, answer, checks).correct


def test_the_tasks_scorer_accepts_the_right_answer_and_refuses_a_wrong_one() -> None:
    for example in load("eval"):
        assert _verdict(example, example.answer), example
        assert not _verdict(example, str(int(example.answer) + 1)), example
        assert not _verdict(example, "no idea"), example


def test_an_answer_that_breaks_the_scorer_is_wrong_not_an_error() -> None:
    # prime_factorization's scorer calls int() on every factor of the answer.
    [example, *_] = ReasoningGymProvider().load(
        "eval", argument="prime_factorization", seed=0, options={"train_size": 1, "eval_size": 1},
        transforms=TRANSFORMS,
    )
    assert _verdict(example, example.answer)
    assert not _verdict(example, "seven × x")


def test_the_check_needs_the_items_entry() -> None:
    with pytest.raises(ValueError, match=r"needs meta\.reasoning_gym_task and meta\.reasoning_gym_entry"):
        check_reasoning_gym("3", "3", AnswerOptions(), meta={"category": "x"})


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("leg_countin", r"unknown task 'leg_countin'\. Did you mean 'leg_counting'.*"
                        r"Available \(\d+\): ab, acre, .*, \.\.\.$"),
        (None, r"needs task names: reasoning-gym:NAME\[,NAME\.\.\.\]"),
        ("gcd,gcd", "task 'gcd' is named twice"),
        ("gcd,", "an empty task name"),
        ("boxnet", "task 'boxnet' item 0: .*no reference answer"),
        ("arc_agi", "task 'arc_agi' item 0: .*refuses its own answer once the entry is stored as JSON"),
    ],
)
def test_bad_task_names_get_one_line(argument: str | None, message: str) -> None:
    with pytest.raises(DataError, match=message) as caught:
        load("eval", argument=argument)
    assert "\n" not in str(caught.value)


def test_bad_options_and_splits_are_refused() -> None:
    with pytest.raises(DataError, match="has no split 'dev'"):
        load("dev")
    with pytest.raises(ConfigError, match=r"dataset\.options\.eval_size: must be > 0"):
        ReasoningGymProvider().load("eval", argument="gcd", seed=0, transforms=TRANSFORMS, options={"eval_size": 0})
