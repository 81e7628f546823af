"""Every verifiable judging-mix item's reference answer passes its own answer check (the
standard checks are tunix-eval's) and, for code, its own tests; every open item carries a
rubric instead. The suite is reached through the host, as a run reaches it."""

from __future__ import annotations

from tunix_core.data.loading import load_split
from tunix_core.plugins import get_host
from tunix_core.protocols import AnswerOptions


def test_verifiable_references_pass_their_own_checks_and_tests() -> None:
    host = get_host()
    items = load_split(host.datasets, "judging-mix", "eval", seed=0, transforms=host.transforms)
    assert len(items) >= 140
    for item in items:
        if item.meta.section == "open":
            assert item.meta.answer_match == "rubric"
            assert item.meta.extra["rubric"] == item.answer and "must:" in item.answer
            continue
        assert item.meta.section == "verifiable"
        check = host.answer_checks.load(item.meta.answer_match)
        options = AnswerOptions()
        meta = item.meta.extra
        verdict = (check(item.answer, item.answer, options, meta=meta)
                   if getattr(check, "takes_meta", False) else
                   check(item.answer, item.answer, options))  # fmt: skip
        assert verdict.correct, item.id
        if item.meta.answer_match == "code":
            namespace: dict = {}
            exec(item.answer + "\n" + meta["test"], namespace)  # the reference passes its tests
            namespace["check"](namespace[meta["entry_point"]])
