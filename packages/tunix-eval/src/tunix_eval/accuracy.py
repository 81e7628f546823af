"""``accuracy``: the answer in the ``<answer>`` block against the expected one.

The answer is the text of the last complete answer block
(:func:`tunix_core.data.parse.parse_completion`); there is no fallback to free text, so a
completion without an answer block is wrong. Comparison follows the rules of
:mod:`tunix_eval.normalize`. Decides the ``extracted_answer`` and ``correct`` verdicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tunix_core.data.parse import parse_completion
from tunix_core.evaluation import UNKNOWN, binomial_stderr
from tunix_core.protocols import EvaluatorReport, Prediction
from tunix_eval.normalize import compare_answers


class AccuracyEvaluator:
    """Answer accuracy after normalisation, overall and per category."""

    name = "accuracy"

    def __init__(self, rel_tol: float = 1e-6, ordered_lists: bool = True) -> None:
        self.rel_tol = rel_tol
        self.ordered_lists = ordered_lists

    def evaluate(self, predictions: Sequence[Prediction]) -> EvaluatorReport:
        per_item: dict[str, dict[str, Any]] = {}
        rules: Counter[str] = Counter()
        by_category: dict[str, list[bool]] = {}
        answered = correct_answered = 0
        for prediction in predictions:
            answer = parse_completion(prediction.completion).answer
            match = compare_answers(answer, prediction.expected, rel_tol=self.rel_tol,
                                    ordered_lists=self.ordered_lists)  # fmt: skip
            per_item[prediction.id] = {
                "extracted_answer": answer,
                "correct": match.correct,
                "rule": match.rule,
            }
            if match.correct:
                rules[match.rule] += 1
            if answer and answer.strip():
                answered += 1
                correct_answered += match.correct
            category = str(prediction.meta.get("category") or UNKNOWN)
            by_category.setdefault(category, []).append(match.correct)
        n = len(predictions)
        correct = sum(item["correct"] for item in per_item.values())
        metrics = {
            "n": n,
            "correct": correct,
            "answer_accuracy": correct / n if n else 0.0,
            "answer_accuracy_stderr": binomial_stderr(correct, n),
            "answered": answered,
            "answered_rate": answered / n if n else 0.0,
            "accuracy_when_answered": correct_answered / answered if answered else 0.0,
            "correct_by_rule": dict(sorted(rules.items())),
            "by_category": {
                name: {
                    "n": len(hits),
                    "correct": sum(hits),
                    "answer_accuracy": sum(hits) / len(hits),
                    "answer_accuracy_stderr": binomial_stderr(sum(hits), len(hits)),
                }
                for name, hits in sorted(by_category.items())
            },
            "rel_tol": self.rel_tol,
            "ordered_lists": self.ordered_lists,
        }
        return EvaluatorReport(metrics=metrics, per_item=per_item)
