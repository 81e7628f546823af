import pytest

from tunix_core.plugins import get_host
from tunix_core.protocols import (
    AnswerOptions,
    AnswerVerdict,
    Prediction,
    RunContext,
    TransformRegistry,
)
from tunix_plugin_example.brevity import AnswerBrevity
from tunix_plugin_example.digit_sum import DigitSumDataset
from tunix_plugin_example.integer import integer

TRANSFORMS = TransformRegistry()  # digit-sum reads no user rows, so it names no transform


def test_digit_sum_answers_follow_from_the_steps():
    examples = DigitSumDataset().load("train", argument=None, seed=3, transforms=TRANSFORMS, options={})
    assert len(examples) == 200
    for example in examples:
        number = int(example.question.rsplit(" ", 1)[1].rstrip("?"))
        assert example.answer == str(sum(map(int, str(number))))
        assert example.steps[-1].endswith(f"= {example.answer}") or len(str(number)) == 1
        assert example.meta.answer_match == "integer"


def test_splits_share_no_question():
    dataset = DigitSumDataset()
    train = {e.question for e in dataset.load("train", argument=None, seed=0, transforms=TRANSFORMS, options={})}
    evaluation = {e.question for e in dataset.load("eval", argument=None, seed=0, transforms=TRANSFORMS, options={})}
    assert not train & evaluation


def test_brevity():
    predictions = [
        Prediction("a", "", "<reasoning>x</reasoning><answer>15</answer>", "15"),
        Prediction("b", "", "<reasoning>x</reasoning><answer>" + "9" * 30 + "</answer>", "9"),
        Prediction("c", "", "no tags at all", "1"),
    ]
    report = AnswerBrevity(max_chars=20).evaluate(predictions, context=RunContext(get_host()))
    assert report.metrics["short_rate"] == 1 / 3
    assert report.metrics["mean_answer_chars"] == 16
    assert report.per_item["c"] == {"answer_chars": None}


@pytest.mark.parametrize(
    ("answer", "correct"),
    [("15", True), (" 15. ", True), ("015", True), ("15.0", False), ("fifteen", False),
     ("15 points", False), ("51", False)],
)  # fmt: skip
def test_integer_check(answer, correct):
    assert integer(answer, "15", AnswerOptions()) == AnswerVerdict(correct, "integer")


def test_integer_check_needs_a_whole_number_to_compare_with():
    assert integer("", "15", AnswerOptions()) == AnswerVerdict(False, "empty")
    with pytest.raises(ValueError, match=r"must be a whole number, got '1\.5'"):
        integer("1.5", "1.5", AnswerOptions())
