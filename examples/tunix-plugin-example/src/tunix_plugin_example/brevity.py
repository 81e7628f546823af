"""An evaluator that reports how short the extracted answers are."""

from __future__ import annotations

from collections.abc import Sequence

from tunix_core.data.parse import parse_completion
from tunix_core.protocols import EvaluatorReport, Prediction, RunContext


class AnswerBrevity:
    name = "answer-brevity"

    def __init__(self, max_chars: int = 20) -> None:
        self.max_chars = max_chars

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        lengths = {}
        for prediction in predictions:
            answer = parse_completion(prediction.completion).answer
            lengths[prediction.id] = None if answer is None else len(answer.strip())
        measured = [n for n in lengths.values() if n is not None]
        short = sum(1 for n in measured if n <= self.max_chars)
        metrics = {
            "max_chars": self.max_chars,
            "short_rate": short / len(predictions) if predictions else 0.0,
            "mean_answer_chars": sum(measured) / len(measured) if measured else None,
        }
        per_item = {key: {"answer_chars": value} for key, value in lengths.items()}
        return EvaluatorReport(metrics=metrics, per_item=per_item)
