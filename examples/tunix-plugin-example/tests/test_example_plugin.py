from tunix_core.protocols import Prediction
from tunix_plugin_example.brevity import AnswerBrevity
from tunix_plugin_example.digit_sum import DigitSumDataset


def test_digit_sum_answers_follow_from_the_steps():
    examples = DigitSumDataset().load("train", argument=None, seed=3, options={})
    assert len(examples) == 200
    for example in examples:
        number = int(example.question.rsplit(" ", 1)[1].rstrip("?"))
        assert example.answer == str(sum(map(int, str(number))))
        assert example.steps[-1].endswith(f"= {example.answer}") or len(str(number)) == 1


def test_splits_share_no_question():
    dataset = DigitSumDataset()
    train = {e.question for e in dataset.load("train", argument=None, seed=0, options={})}
    evaluation = {e.question for e in dataset.load("eval", argument=None, seed=0, options={})}
    assert not train & evaluation


def test_brevity():
    predictions = [
        Prediction("a", "", "<reasoning>x</reasoning><answer>15</answer>", "15"),
        Prediction("b", "", "<reasoning>x</reasoning><answer>" + "9" * 30 + "</answer>", "9"),
        Prediction("c", "", "no tags at all", "1"),
    ]
    report = AnswerBrevity(max_chars=20).evaluate(predictions)
    assert report.metrics["short_rate"] == 1 / 3
    assert report.metrics["mean_answer_chars"] == 16
    assert report.per_item["c"] == {"answer_chars": None}
