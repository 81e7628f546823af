"""Trace statistics on hand-written completions."""

import pytest

from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.trace import TraceEvaluator, count_steps


def test_count_steps():
    assert count_steps("one\n\n  two  \nthree") == 3
    assert count_steps("   ") == 0


def test_steps_lengths_and_answers_stated_in_reasoning():
    predictions = [
        # correct, and the reasoning states 42
        Prediction("a", "", "<reasoning>40 + 2\nis 42</reasoning><answer>42</answer>", "42"),
        # correct, but 42 never appears in the reasoning
        Prediction("b", "", "<reasoning>I just know.</reasoning><answer>42</answer>", "42"),
        # wrong: not counted in the share
        Prediction("c", "", "<reasoning>1\n2\n3\n4</reasoning><answer>7</answer>", "8"),
        # correct without any reasoning: counts as not stated
        Prediction("d", "", "<answer>Paris</answer>", "Paris"),
    ]
    report = TraceEvaluator().evaluate(predictions, context=RunContext(get_host()))
    items = report.per_item
    assert items["a"] == {"reasoning_steps": 2, "reasoning_tokens": 7, "answer_in_reasoning": True}
    assert items["b"]["answer_in_reasoning"] is False
    assert items["c"]["answer_in_reasoning"] is None and items["c"]["reasoning_steps"] == 4
    assert items["d"] == {"reasoning_steps": 0, "reasoning_tokens": 0, "answer_in_reasoning": False}
    metrics = report.metrics
    assert metrics["with_reasoning"] == 3
    assert metrics["steps"] == {"mean": pytest.approx(7 / 3), "median": 2.0, "max": 4.0}
    assert metrics["correct"] == 3
    assert metrics["answer_in_reasoning"] == 1
    assert metrics["answer_in_reasoning_rate"] == pytest.approx(1 / 3)


def test_no_correct_answers_gives_no_rate():
    report = TraceEvaluator().evaluate([Prediction("a", "", "nothing", "1")], context=RunContext(get_host()))
    assert report.metrics["answer_in_reasoning_rate"] is None
    assert report.metrics["steps"] == {"mean": 0.0, "median": 0.0, "max": 0.0}
