from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.errors import ConfigError, DataError
from tunix_core.protocols import TransformRegistry
from tunix_datasets.providers.champ import ChampProvider, difficulty_from_steps, problem_to_example
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)


def _problem(steps: list[str], answer: str = " 239 ") -> SimpleNamespace:
    """Shaped like ``champ_dataset.Problem``: identifier, text, category, solution, answer."""
    return SimpleNamespace(
        identifier="P_Combinatorics_1",
        text="How many strings of length 6 ...?",
        category="Combinatorics",
        solution=SimpleNamespace(steps=[SimpleNamespace(text=t) for t in steps]),
        answer=answer,
    )


def test_problem_becomes_a_record() -> None:
    example = problem_to_example(_problem(["Let x_n be ...", " ", "Thus 239. "]))
    assert example == ReasoningExample(
        id="champ-P_Combinatorics_1",
        question="How many strings of length 6 ...?",
        steps=("Let x_n be ...", "Thus 239."),
        answer="239",
        meta=ExampleMeta("combinatorics", "core", "easy", "champ-dataset v0"),
    )


@pytest.mark.parametrize(
    ("count", "level"), [(1, "easy"), (3, "easy"), (4, "medium"), (6, "medium"), (7, "hard")]
)
def test_difficulty_grows_with_the_solution(count: int, level: str) -> None:
    assert difficulty_from_steps(count) == level


def test_options_and_split_are_checked_before_loading() -> None:
    with pytest.raises(DataError, match="'champ' has no split 'test'"):
        ChampProvider().load("test", argument=None, seed=0, transforms=TRANSFORMS, options={})
    with pytest.raises(
        ConfigError, match=r"dataset\.options\.eval_fraction: must be between 0 and 1"
    ):
        ChampProvider().load("eval", argument=None, seed=0, transforms=TRANSFORMS, options={"eval_fraction": 0})


@pytest.mark.heavy
def test_real_champ_problems() -> None:
    pytest.importorskip("champ_dataset")
    provider = ChampProvider()
    train = provider.load("train", argument=None, seed=0, transforms=TRANSFORMS, options={})
    evaluation = provider.load("eval", argument=None, seed=0, transforms=TRANSFORMS, options={})
    assert len(train) + len(evaluation) == 270
    assert not {e.question for e in train} & {e.question for e in evaluation}
    categories = Counter(e.meta.category for e in train + evaluation)
    assert categories == {
        "number-theory": 80,
        "inequality": 50,
        "polynomial": 50,
        "sequence": 50,
        "combinatorics": 40,
    }
    # Every category is held out in proportion (20 %).
    assert Counter(e.meta.category for e in evaluation) == {
        k: round(v * 0.2) for k, v in categories.items()
    }
    first = next(e for e in train + evaluation if e.id == "champ-P_Combinatorics_1")
    assert first.answer == "239" and len(first.steps) == 6
    assert provider.load("eval", argument=None, seed=0, transforms=TRANSFORMS, options={}) == evaluation
