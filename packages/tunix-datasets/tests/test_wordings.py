"""Training questions asked in several wordings: the same problems, none worded as ood asks."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tunix_core.config import ConfigError
from tunix_core.data.record import ReasoningExample
from tunix_core.protocols import TransformRegistry
from tunix_datasets import wordings
from tunix_datasets.providers.dev_reasoning import DevReasoningV2
from tunix_datasets.providers.dev_reasoning_v3 import DevReasoningV3

PROVIDERS = {"v2": DevReasoningV2(), "v3": DevReasoningV3()}


def _load(split: str, version: str = "v2", **options: str) -> list[ReasoningExample]:
    return PROVIDERS[version].load(
        split, argument=None, seed=0, options=options, transforms=TransformRegistry()
    )


def _as_regex(wording: str) -> re.Pattern[str]:
    """A wording with every ``{field}`` free: what any question asked that way matches."""
    parts = re.split(r"\{\w+\}", wording)
    return re.compile(".+".join(map(re.escape, parts)), re.S)


def _payload(question: str) -> tuple[list[str], list[str]]:
    """What a question is about, in any order: its numbers and its quoted or listed text."""
    listed = re.findall(r'"([^"]*)"', question) or re.findall(r": (.+)\.$", question)
    return sorted(re.findall(r"\d+(?:\.\d+)?", question)), sorted(listed)


@pytest.mark.parametrize("version", PROVIDERS)
def test_each_rule_s_first_wording_is_the_question_as_generated(version: str) -> None:
    matched: Counter[str] = Counter()
    for example in _load("train", version) + _load("eval", version):
        found = wordings.matching_rule(example.question)
        if found is None:
            continue
        rule, groups = found
        assert rule.wordings[0].format(**groups) == example.question
        matched[rule.name] += 1
    assert set(matched) == {rule.name for rule in wordings.REWORDINGS}


@pytest.mark.parametrize("version", PROVIDERS)
def test_reworded_training_changes_only_questions_and_keeps_what_they_ask(version: str) -> None:
    plain, varied = _load("train", version), _load("train", version, wordings="varied")
    assert [e.id for e in varied] == [e.id for e in plain]
    changed = 0
    for before, after in zip(plain, varied, strict=True):
        assert (after.steps, after.answer, after.meta) == (before.steps, before.answer, before.meta)
        assert _payload(after.question) == _payload(before.question), after.question
        changed += after.question != before.question
    assert changed >= 550  # of 1000; syllogisms, packs and edge cases keep their wording
    assert len({" ".join(e.question.split()) for e in varied}) == len(varied)


def test_every_wording_is_used_and_the_choice_is_the_same_on_every_load() -> None:
    varied = _load("train", wordings="varied")
    used = Counter(
        next(w for w in rule.wordings if _as_regex(w).fullmatch(e.question))
        for e in varied
        if (rule := _rule_for(e.question)) is not None
    )
    for rule in wordings.REWORDINGS:
        for wording in rule.wordings:
            assert used[wording] >= 1, wording
    assert _load("train", wordings="varied") == varied


def _rule_for(question: str) -> wordings.Rewording | None:
    for rule in wordings.REWORDINGS:
        if any(_as_regex(w).fullmatch(question) for w in rule.wordings):
            return rule
    return None


def test_no_ood_question_is_asked_in_any_training_wording() -> None:
    patterns = [_as_regex(w) for rule in wordings.REWORDINGS for w in rule.wordings]
    ood = _load("ood")
    assert len(ood) >= 300
    for example in ood:
        assert not any(p.fullmatch(example.question) for p in patterns), example.question


@pytest.mark.parametrize("version", PROVIDERS)
def test_eval_and_ood_do_not_change_with_the_option(version: str) -> None:
    for split in ("eval", "ood"):
        assert _load(split, version, wordings="varied") == _load(split, version)


def test_an_unknown_wordings_value_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"dataset\.options\.wordings: must be one of 'one', 'varied', got 'many'"):
        _load("train", wordings="many")
