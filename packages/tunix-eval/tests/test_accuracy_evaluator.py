"""Answer accuracy on hand-written completions."""

import pytest

from tunix_core.protocols import Prediction
from tunix_eval.accuracy import AccuracyEvaluator


def wrap(answer: str) -> str:
    return f"<reasoning>Work it out.</reasoning><answer>{answer}</answer>"


ITEMS = [
    # id, completion, expected, category
    ("thousands", wrap("1,234"), "1234", "arithmetic"),
    ("currency", wrap("$12.50"), "12.5", "arithmetic"),
    ("percent", wrap("25%"), "0.25", "arithmetic"),
    ("fraction", wrap("3/4"), "0.75", "arithmetic"),
    ("wrong", wrap("13"), "12", "arithmetic"),
    ("yes", wrap("Yes, it is prime."), "yes", "logic"),
    ("list", wrap("2, 3 and 5"), "2, 3, 5", "logic"),
    ("unicode", wrap("Zürich"), "zürich", "geography"),
    ("no_tags", "The answer is 4.", "4", "arithmetic"),  # no answer block: never credited
    ("empty", wrap(""), "4", "arithmetic"),
    ("unclosed", "<reasoning>ok</reasoning><answer>4", "4", "arithmetic"),
    (
        "two_answers",
        "<reasoning>r</reasoning><answer>5</answer><answer>4</answer>",
        "4",
        "arithmetic",
    ),
    ("nested", "<reasoning>r <answer>4</answer></reasoning>", "4", "arithmetic"),
    ("after_answer", wrap("4") + " Let me know!", "4", "arithmetic"),
]


@pytest.fixture(scope="module")
def report():
    predictions = [Prediction(i, "", c, e, {"category": cat}) for i, c, e, cat in ITEMS]
    return AccuracyEvaluator().evaluate(predictions)


def test_per_item_verdicts(report):
    correct = {item_id for item_id, item in report.per_item.items() if item["correct"]}
    assert correct == {
        "thousands", "currency", "percent", "fraction", "yes", "list", "unicode",
        "two_answers",  # the last answer block counts
        "nested",  # an answer block inside the reasoning is still the only answer block
        "after_answer",  # text after </answer> costs format, not accuracy
    }  # fmt: skip
    assert report.per_item["no_tags"] == {
        "extracted_answer": None,
        "correct": False,
        "rule": "missing",
    }
    assert report.per_item["unclosed"]["rule"] == "missing"
    assert report.per_item["empty"]["rule"] == "empty"
    assert report.per_item["two_answers"]["extracted_answer"] == "4"
    assert report.per_item["yes"]["rule"] == "yes/no"
    assert report.per_item["currency"]["rule"] == "number"


def test_metrics_overall_and_per_category(report):
    metrics = report.metrics
    assert (metrics["n"], metrics["correct"]) == (14, 10)
    assert metrics["answer_accuracy"] == pytest.approx(10 / 14)
    assert metrics["answered"] == 11  # no_tags, empty and unclosed have no usable answer
    assert metrics["accuracy_when_answered"] == pytest.approx(10 / 11)
    arithmetic = metrics["by_category"]["arithmetic"]
    assert (arithmetic["n"], arithmetic["correct"]) == (11, 7)
    assert metrics["by_category"]["logic"]["answer_accuracy"] == 1.0
    assert metrics["correct_by_rule"] == {"list": 1, "number": 4, "text": 4, "yes/no": 1}


def test_options_reach_the_comparison():
    predictions = [Prediction("a", "", wrap("5, 3, 2"), "2, 3, 5")]
    assert not AccuracyEvaluator().evaluate(predictions).per_item["a"]["correct"]
    assert AccuracyEvaluator(ordered_lists=False).evaluate(predictions).per_item["a"]["correct"]
    close = [Prediction("b", "", wrap("100.5"), "100")]
    assert AccuracyEvaluator(rel_tol=0.01).evaluate(close).per_item["b"]["correct"]
    assert not AccuracyEvaluator().evaluate(close).per_item["b"]["correct"]
