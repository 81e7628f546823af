from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable

import attrs
import pytest

from tunix_core.data.parse import parse_completion
from tunix_core.data.record import dumps_jsonl
from tunix_core.data.render import render_example
from tunix_core.errors import DataError
from tunix_core.protocols import TransformRegistry
from tunix_datasets.providers.golden import GENERATOR_VERSION, GoldenV2
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)


def _load(split: str, seed: int = 0) -> list:
    return GoldenV2().load(split, argument=None, seed=seed, transforms=TRANSFORMS, options={})


def test_items_are_pinned_to_the_generator_version() -> None:
    digest = hashlib.sha256(dumps_jsonl(_load("eval")).encode()).hexdigest()
    assert (GENERATOR_VERSION, digest) == (
        "2.1.0",
        "b838ad873849ea86b28dbb0b7b81b69ef287a5857be5c9ed97b603d9129d4c08",
    ), "golden-v2 changed: bump its version"


def test_items_are_those_of_2_0_0_apart_from_answer_match() -> None:
    auto = [attrs.evolve(e, meta=attrs.evolve(e.meta, answer_match="auto")) for e in _load("eval")]
    digest = hashlib.sha256(dumps_jsonl(auto).encode()).hexdigest()
    assert digest == "06c7874baab3504a8d36fbdefe6bc8705c34c9d95f7aba40766770d43fb34440"


def test_reversals_and_uppercase_need_the_exact_case() -> None:
    checks = {(e.meta.category, e.meta.answer_match) for e in _load("eval")}
    strict = {category for category, check in checks if check != "auto"}
    assert strict == {"golden_reverse", "golden_uppercase"}
    assert {check for _, check in checks} == {"auto", "exact"}


def test_one_hundred_items_ten_of_each_kind() -> None:
    items = _load("eval")
    assert len(items) == 100
    assert set(Counter(e.meta.category for e in items).values()) == {10}
    assert len({e.question for e in items}) == 100
    assert len({e.id for e in items}) == 100


def test_fixed_whatever_the_seed_and_both_splits_are_the_same_items() -> None:
    assert _load("eval", seed=0) == _load("eval", seed=123) == _load("train", seed=7)


def test_answers_follow_from_questions(solve: Callable[[str], str | None]) -> None:
    for example in _load("eval"):
        assert solve(example.question) == example.answer, example


def test_items_are_small_and_render_exactly() -> None:
    for example in _load("eval"):
        rendered = render_example(example)
        assert len(rendered.text) < 400
        assert parse_completion(rendered.completion).format_exact


def test_bad_split() -> None:
    with pytest.raises(DataError, match=r"golden-v2.*no split 'dev'; available: train, eval"):
        _load("dev")
