from __future__ import annotations

import re
from fractions import Fraction

import pytest

from tunix_core.errors import ConfigError, DataError
from tunix_core.protocols import TransformRegistry
from tunix_datasets.providers.gsm_symbolic import (
    GsmSymbolicProvider,
    entry_to_example,
    solution_steps,
)
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

# The two shapes of worked solution reasoning-gym's gsm_symbolic writes.
PLAIN = (
    "James receives 48=48 emails that don't require a response\n"
    "So James responds to 160-48=112 emails per day\n"
    "In a 5 day work week, James responds to 112*5=560 emails\n#### 560"
)
BULLETED = (
    "Let's solve this step by step:\n\n1. Initial amounts:\n   • John has 35 apple\n"
    "   • He has 3 times as many kiwi, so 35 × 3 = 105 kiwi\n\nTherefore 288.\n#### 288"
)


def test_solution_lines_become_steps() -> None:
    assert solution_steps(PLAIN) == (
        "James receives 48=48 emails that don't require a response",
        "So James responds to 160-48=112 emails per day",
        "In a 5 day work week, James responds to 112*5=560 emails",
    )
    assert solution_steps(BULLETED) == (
        "1. Initial amounts:",
        "John has 35 apple",
        "He has 3 times as many kiwi, so 35 × 3 = 105 kiwi",
        "Therefore 288.",
    )


def test_entry_becomes_a_record() -> None:
    entry = {"question": "How many emails? ", "answer": "560", "metadata": {"answer_cot": PLAIN}}
    example = entry_to_example(entry, "gsm-symbolic-eval-0000", "reasoning-gym x")
    assert (example.question, example.answer, len(example.steps)) == ("How many emails?", "560", 3)
    assert (example.meta.category, example.meta.difficulty) == ("gsm_symbolic", "easy")


def test_options_and_split_are_checked() -> None:
    with pytest.raises(DataError, match="'gsm-symbolic' has no split 'dev'"):
        GsmSymbolicProvider().load("dev", argument=None, seed=0, transforms=TRANSFORMS, options={})
    with pytest.raises(ConfigError, match=r"dataset\.options\.train_size: must be > 0"):
        GsmSymbolicProvider().load("train", argument=None, seed=0, transforms=TRANSFORMS, options={"train_size": 0})


@pytest.mark.heavy
def test_real_gsm_symbolic_items() -> None:
    pytest.importorskip("reasoning_gym")
    provider = GsmSymbolicProvider()
    options = {"train_size": 60, "eval_size": 20}
    train = provider.load("train", argument=None, seed=3, transforms=TRANSFORMS, options=options)
    evaluation = provider.load("eval", argument=None, seed=3, transforms=TRANSFORMS, options=options)
    assert (len(train), len(evaluation)) == (60, 20)
    assert not {e.question for e in train} & {e.question for e in evaluation}
    for example in train + evaluation:
        assert re.fullmatch(r"-?\d+(\.\d+)?", example.answer), example
        assert example.steps and not any(s.startswith("####") for s in example.steps)
        # The worked solution reaches the answer somewhere in its numbers.
        numbers = {
            Fraction(n)
            for s in example.steps
            for n in re.findall(r"\d+(?:\.\d+)?", s.replace(",", ""))
        }
        assert abs(Fraction(example.answer)) in numbers, example
    assert provider.load("eval", argument=None, seed=3, transforms=TRANSFORMS, options=options) == evaluation
