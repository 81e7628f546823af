"""judging-mix: pinned, big enough per domain, every item either verifiable or open with a
rubric, and a broken item refused in one line that names it. That each verifiable item's
reference passes its own check is tested in tunix-eval, which ships the standard checks."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from tunix_core.data.record import dumps_jsonl
from tunix_core.errors import DataError
from tunix_core.plugins import get_host
from tunix_core.protocols import AnswerOptions, TransformRegistry
from tunix_datasets.providers.judging_mix import (
    DOMAINS,
    RUBRIC_CHECK,
    VERSION,
    JudgingMix,
    data_path,
    load_items,
)

# Changing an item must change VERSION: update both pins with it.
PINNED = {
    "version": "1.0.0",
    "file": "e83f0774f187d1fe031c955e1b9805f6abd0275c16887be15f255712deba7bf4",
}


def _load() -> list:
    return JudgingMix().load("eval", argument=None, seed=0, options={},
                             transforms=TransformRegistry())  # fmt: skip


def test_the_item_file_is_pinned_to_the_version() -> None:
    digest = hashlib.sha256(data_path().read_bytes()).hexdigest()
    assert (VERSION, digest) == (PINNED["version"], PINNED["file"])
    assert data_path().stat().st_size < 1_000_000


def test_at_least_twenty_items_in_every_domain_and_140_in_all() -> None:
    items = _load()
    per_domain = Counter(item.meta.category for item in items)
    assert set(per_domain) == set(DOMAINS)
    assert min(per_domain.values()) >= 20 and len(items) >= 140
    assert len({item.id for item in items}) == len(items)
    # The same items whatever the seed: a held-out suite, not a draw.
    again = JudgingMix().load("eval", argument=None, seed=7, options={},
                              transforms=TransformRegistry())  # fmt: skip
    assert dumps_jsonl(again) == dumps_jsonl(items)


def test_summarisation_prompts_carry_their_passage() -> None:
    for item in _load():
        if item.meta.category == "summarisation":
            assert "Passage:\n" in item.question and len(item.question) > 200


def test_the_rubric_check_never_marks_an_open_item_correct() -> None:
    check = get_host().answer_checks.load(RUBRIC_CHECK)
    verdict = check("anything", "A good answer must:\n- x", AnswerOptions())
    assert (verdict.correct, verdict.rule) == (False, "rubric_needs_judge")


@pytest.mark.parametrize(
    ("drop", "problem"),
    [
        ("rubric", "item 'jm-creative-03': field 'answer': the item has neither an answer nor a rubric"),
        ("answer_match", "item 'jm-math-02': field 'answer_match': an item with an answer must name"),
        ("test", "item 'jm-code-01': field 'test': a code item needs its entry point and its tests"),
    ],
)  # fmt: skip
def test_a_broken_copy_is_refused_in_one_line_naming_the_item(
    tmp_path: Path, drop: str, problem: str
) -> None:
    lines = data_path().read_text(encoding="utf-8").splitlines()
    target = {"rubric": "jm-creative-03", "answer_match": "jm-math-02", "test": "jm-code-01"}[drop]
    for index, line in enumerate(lines):
        item = json.loads(line)
        if item["id"] == target:
            del item[drop]
            lines[index] = json.dumps(item)
            number = index + 1
    broken = tmp_path / "judging_mix.jsonl"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_items(broken)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"judging_mix.jsonl:{number}: {problem}")


def test_only_the_eval_split() -> None:
    with pytest.raises(DataError, match="has no split 'train'; available: eval"):
        JudgingMix().load("train", argument=None, seed=0, options={},
                          transforms=TransformRegistry())  # fmt: skip
