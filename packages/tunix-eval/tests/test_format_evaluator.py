"""The format evaluator on hand-written completions, well-formed and malformed."""

import pytest

from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.format import FormatEvaluator

GOOD = "<reasoning>Add 2 and 2.</reasoning><answer>4</answer>"
CASES = {
    "exact": GOOD,
    "exact_with_end_of_turn": GOOD + "<end_of_turn>",
    "exact_with_whitespace": "\n  <reasoning>Add.\nThen stop.</reasoning>\n<answer>4</answer>\n",
    "unicode": "<reasoning>½ × 8 = 4 — done ✓</reasoning><answer>四</answer>",
    "missing_tags": "The answer is 4.",
    "missing_reasoning": "<answer>4</answer>",
    "unclosed_answer": "<reasoning>Add.</reasoning><answer>4",
    "nested": "<reasoning>Add <answer>4</answer></reasoning><answer>4</answer>",
    "two_answers": "<reasoning>Add.</reasoning><answer>5</answer><answer>4</answer>",
    "empty_answer": "<reasoning>Add.</reasoning><answer>  </answer>",
    "text_after_answer": GOOD + " Hope this helps!",
    "text_before_reasoning": "Sure. " + GOOD,
    "answer_first": "<answer>4</answer><reasoning>Add.</reasoning>",
    "empty": "",
    # What untrained Gemma 3 270M wrote: the system prompt's empty tags, echoed.
    "echoed_prompt": "Think inside <reasoning></reasoning>, answer inside <answer></answer>.\n"
    "What is 2 + 2? Think inside <reasoning></reasoning>, answer inside <answer></answer>",
}


def evaluate(cases, **options):
    predictions = [Prediction(name, "", text, "4") for name, text in cases.items()]
    return FormatEvaluator(**options).evaluate(predictions, context=RunContext(get_host()))


def test_exact_format_and_every_way_to_miss_it():
    report = evaluate(CASES)
    ok = {name for name, item in report.per_item.items() if item["format_ok"]}
    assert ok == {"exact", "exact_with_end_of_turn", "exact_with_whitespace", "unicode"}
    problems = {name: " | ".join(item["problems"]) for name, item in report.per_item.items()}
    assert "missing reasoning" in problems["missing_tags"]
    assert "text outside" in problems["missing_tags"]
    assert "unclosed <answer>" in problems["unclosed_answer"]
    assert "nested" in problems["nested"]
    assert "2 answer blocks" in problems["two_answers"]
    assert "empty answer" in problems["empty_answer"]
    assert "text after </answer>" in problems["text_after_answer"]
    assert "text before <reasoning>" in problems["text_before_reasoning"]
    assert "answer before reasoning" in problems["answer_first"]


def test_softer_counts_show_progress_before_the_format_is_exact():
    report = evaluate(CASES)
    item = report.per_item
    assert item["text_after_answer"]["has_both"] and not item["text_after_answer"]["format_ok"]
    assert item["missing_reasoning"]["has_answer"] and not item["missing_reasoning"]["has_both"]
    assert item["empty_answer"]["has_answer"] and not item["empty_answer"]["answer_nonempty"]
    assert not item["unclosed_answer"]["has_answer"]
    echoed = item["echoed_prompt"]
    assert echoed["has_reasoning"] and echoed["has_answer"] and not echoed["has_both"]
    metrics = report.metrics
    n = len(CASES)
    assert metrics["n"] == n
    assert metrics["format_compliance"] == pytest.approx(4 / n)
    assert metrics["has_both_rate"] > metrics["format_compliance"]
    assert metrics["has_answer_rate"] >= metrics["answer_nonempty_rate"]
    assert sum(metrics["problems"].values()) >= n - 4
    # missing_tags, missing_reasoning and empty have no reasoning block
    assert metrics["problems"]["missing reasoning block"] == 3
    assert metrics["problems"]["2 answer blocks"] == 3  # two_answers, nested, echoed_prompt


def test_token_budget():
    long = "<reasoning>" + "step " * 50 + "</reasoning><answer>4</answer>"
    report = evaluate({"short": GOOD, "long": long}, max_tokens=40)
    assert report.per_item["short"]["format_ok"]
    assert report.per_item["short"]["tokens"] == 20
    long_item = report.per_item["long"]
    assert long_item["tags_exact"] and not long_item["within_budget"] and not long_item["format_ok"]
    assert long_item["problems"] == [f"over the token budget ({long_item['tokens']} > 40)"]
    assert report.metrics["problems"] == {"over the token budget": 1}
    assert report.metrics["max_tokens"] == 40
    assert report.metrics["token_counter"].startswith("approximate")


def test_a_real_token_counter_can_replace_the_approximation():
    report = evaluate({"exact": GOOD}, max_tokens=3, count_tokens=len)
    assert report.per_item["exact"]["tokens"] == len(GOOD)
    assert not report.per_item["exact"]["within_budget"]
    assert report.metrics["token_counter"] == "custom counter"


def test_invalid_budget():
    with pytest.raises(ValueError, match="max_tokens"):
        FormatEvaluator(max_tokens=0)
