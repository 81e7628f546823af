from tunix_core.evaluation import score_predictions
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.report import format_summary, pct


def test_format_summary_shows_headline_and_groups():
    predictions = [
        Prediction("a", "", "<reasoning>r</reasoning><answer>1</answer>", "1",
                   {"category": "x", "difficulty": "easy"}),
        Prediction("b", "", "<answer>2</answer>", "3", {"category": "y", "difficulty": "hard"}),
    ]  # fmt: skip
    text = format_summary(score_predictions(predictions, [], label="demo", context=RunContext(get_host())))
    assert text.splitlines()[0] == "Evaluation 'demo': 2 item(s)"
    assert "answer accuracy (primary score)  50.0% ± 35.4%  (1/2)" in text
    assert "format compliance                50.0%" in text
    assert "by difficulty:" in text and "by section:" not in text  # one section: not broken down
    assert "    x  n=1    accuracy 100.0%  format 100.0%" in text


def test_pct():
    assert pct(None) == "-"
    assert pct(0.12345) == "12.3%"
