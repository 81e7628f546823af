from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter
from collections.abc import Callable
from fractions import Fraction

import attrs
import pytest

from tunix_core.config import ConfigError
from tunix_core.data.record import dumps_jsonl
from tunix_core.data.render import render_example
from tunix_core.errors import DataError
from tunix_core.protocols import DatasetProvider, TransformRegistry
from tunix_datasets.providers.dev_reasoning import (
    FAMILIES,
    GENERATOR_VERSION,
    DevReasoningV2,
    generate,
    question_key,
)
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

# A changed generator must change GENERATOR_VERSION: update these pins together with it.
# 2.2.0 added the ood split: train and eval hash exactly as in 2.1.0.
PINNED = {
    "version": "2.2.0",
    "train": "9307dea1788bfebb5e1db1be47e137d4382a7b1b8dc803a7dbcc0a4c6aa54594",
    "eval": "75bcc03e1ebc5afe1928a8ca54807e2e63640738b96770bb977ccd317716c0e6",
    "ood": "2645391881394b5c96413b0755126b45e3dbaa5800b86716c9a78bb3eb1548f9",
}
# The 2.0.0 export: 2.1.0 added meta.answer_match and nothing else, so without that field
# every question, step, answer and id must hash as before (runs on either version train
# and evaluate on the same items).
PINNED_2_0_0 = {
    "train": "9eaf1ef779ec04498c4806ed2fc28d8f3be5539b66817d5532a60d8ddb8c3da8",
    "eval": "b70a7b49cb75b2dd944e0f065b4c408db6eeeaef908a8473202847e8a52e9330",
}


def _load(split: str, seed: int = 0) -> list:
    return DevReasoningV2().load(split, argument=None, seed=seed, transforms=TRANSFORMS, options={})


def _digest(examples: list) -> str:
    return hashlib.sha256(dumps_jsonl(examples).encode()).hexdigest()


def test_export_checksums_are_pinned_to_the_generator_version() -> None:
    actual = {
        "version": GENERATOR_VERSION,
        "train": _digest(_load("train")),
        "eval": _digest(_load("eval")),
        "ood": _digest(_load("ood")),
    }
    assert actual == PINNED, "dev-reasoning-v2 output changed: bump GENERATOR_VERSION and the pins"


@pytest.mark.parametrize("split", ["train", "eval"])
def test_items_are_those_of_2_0_0_apart_from_answer_match(split: str) -> None:
    items = _load(split)
    auto = [attrs.evolve(e, meta=attrs.evolve(e.meta, answer_match="auto")) for e in items]
    assert auto != items
    assert _digest(auto) == PINNED_2_0_0[split]


def test_answers_that_are_a_case_or_an_order_need_a_strict_check() -> None:
    checks: dict[str, set[str]] = {}
    for example in _load("train") + _load("eval"):
        checks.setdefault(example.meta.category, set()).add(example.meta.answer_match)
        if example.meta.category == "sorting":
            words = example.question.startswith("Sort these words")
            assert example.meta.answer_match == ("exact" if words else "list"), example
        if example.meta.category == "edge_case":
            reversal = example.question.startswith("Reverse")
            assert example.meta.answer_match == ("exact" if reversal else "auto"), example
    assert checks.pop("case_change") == checks.pop("string_reversal") == {"exact"}
    assert checks.pop("sorting") == {"exact", "list"}
    assert checks.pop("edge_case") == {"exact", "auto"}
    assert checks == {f.name: {"auto"} for f in FAMILIES if f.name in checks}
    assert len(checks) == len(FAMILIES) - 4


def test_is_a_dataset_provider() -> None:
    provider = DevReasoningV2()
    assert isinstance(provider, DatasetProvider)
    assert list(provider.splits()) == ["train", "eval", "ood"]


def test_counts() -> None:
    train, evaluation = _load("train"), _load("eval")
    assert len(train) == sum(f.train for f in FAMILIES) == 1000
    assert len(evaluation) == sum(f.eval for f in FAMILIES) == 200
    assert Counter(e.meta.category for e in evaluation) == {f.name: f.eval for f in FAMILIES}
    assert Counter(e.meta.category for e in train) == {f.name: f.train for f in FAMILIES}


def test_no_duplicate_questions_and_no_question_in_both_splits() -> None:
    train = [question_key(e.question) for e in _load("train")]
    evaluation = [question_key(e.question) for e in _load("eval")]
    assert len(set(train)) == len(train)
    assert len(set(evaluation)) == len(evaluation)
    assert not set(train) & set(evaluation)


def test_ids_are_unique_across_splits() -> None:
    ids = [e.id for e in _load("train") + _load("eval")]
    assert len(set(ids)) == len(ids)


def test_eval_has_every_section_and_difficulty() -> None:
    evaluation = _load("eval")
    assert {e.meta.section for e in evaluation} == {"core", "trace_sensitive", "edge_case"}
    for section in ("core", "trace_sensitive", "edge_case"):
        difficulties = {e.meta.difficulty for e in evaluation if e.meta.section == section}
        assert difficulties == {"easy", "medium", "hard"}, section


@pytest.mark.parametrize("split", ["train", "eval"])
def test_every_answer_follows_from_its_question(
    split: str, solve: Callable[[str], str | None]
) -> None:
    for example in _load(split):
        assert solve(example.question) == example.answer, example


def test_numeric_answers_are_reached_by_the_last_step() -> None:
    # The shown work must arrive at the answer, not just sit next to it.
    checked = 0
    for example in _load("train") + _load("eval"):
        if not re.fullmatch(r"-?\d+(\.\d+)?", example.answer):
            continue
        stated = {Fraction(n) for n in re.findall(r"-?\d+(?:\.\d+)?", example.steps[-1])}
        assert Fraction(example.answer) in stated, example
        checked += 1
    assert checked > 700


def test_any_prefix_mixes_families() -> None:
    first = _load("eval")[: len(FAMILIES)]
    assert {e.meta.category for e in first} == {f.name for f in FAMILIES}


def test_rendered_examples_stay_short() -> None:
    lengths = [len(render_example(e).text) for e in _load("train") + _load("eval")]
    assert statistics.mean(lengths) < 500
    assert max(lengths) < 800


def test_same_seed_same_items_other_seed_other_items() -> None:
    generate.cache_clear()
    first = _load("eval", seed=0)
    generate.cache_clear()
    assert _load("eval", seed=0) == first
    other = _load("eval", seed=1)
    assert len(other) == len(first)
    assert {e.question for e in other} != {e.question for e in first}


def test_unknown_split_names_the_available_ones() -> None:
    with pytest.raises(DataError, match="no split 'test'; available: train, eval, ood"):
        _load("test")


def test_refuses_an_argument_and_unknown_options() -> None:
    with pytest.raises(DataError, match="takes no argument"):
        DevReasoningV2().load("eval", argument="x", seed=0, transforms=TRANSFORMS, options={})
    with pytest.raises(ConfigError, match=r"dataset\.options\.size: unknown key"):
        DevReasoningV2().load("eval", argument=None, seed=0, transforms=TRANSFORMS, options={"size": 3})
