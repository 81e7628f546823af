"""``accuracy``: the answer in the ``<answer>`` block against the expected one.

The answer is the text of the last complete answer block
(:func:`tunix_core.data.parse.parse_completion`); there is no fallback to free text, so a
completion without an answer block is wrong. Each item is judged by the answer check its
``meta.answer_match`` names (``auto`` by default; :func:`tunix_core.evaluation.check_answer`,
rules in :mod:`tunix_eval.normalize`). Decides the ``extracted_answer`` and ``correct``
verdicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from tunix_core.data.parse import parse_completion
from tunix_core.evaluation import UNKNOWN, answer_match_of, binomial_stderr, check_answer
from tunix_core.protocols import AnswerOptions, EvaluatorReport, Prediction, RunContext


def _tally(hits: list[bool]) -> dict[str, Any]:
    return {
        "n": len(hits),
        "correct": sum(hits),
        "answer_accuracy": sum(hits) / len(hits),
        "answer_accuracy_stderr": binomial_stderr(sum(hits), len(hits)),
    }


class AccuracyEvaluator:
    """Answer accuracy, overall, per category and per answer check (the run host's
    answer checks, ``context.answer_checks``)."""

    name = "accuracy"

    def __init__(
        self,
        rel_tol: float = 1e-6,
        ordered_lists: bool = True,
    ) -> None:
        self.rel_tol = rel_tol
        self.ordered_lists = ordered_lists

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        checks = context.answer_checks
        options = AnswerOptions(rel_tol=self.rel_tol, ordered_lists=self.ordered_lists)
        per_item: dict[str, dict[str, Any]] = {}
        rules: Counter[str] = Counter()
        by_category: dict[str, list[bool]] = {}
        by_check: dict[str, list[bool]] = {}
        answered = correct_answered = 0
        for prediction in predictions:
            answer = parse_completion(prediction.completion).answer
            verdict = check_answer(prediction, answer, checks, options)
            check = answer_match_of(prediction.id, prediction.meta)
            per_item[prediction.id] = {
                "extracted_answer": answer,
                "correct": verdict.correct,
                "answer_match": check,
                "rule": verdict.rule,
            }
            if verdict.correct:
                rules[verdict.rule] += 1
            if answer and answer.strip():
                answered += 1
                correct_answered += verdict.correct
            category = str(prediction.meta.get("category") or UNKNOWN)
            by_category.setdefault(category, []).append(verdict.correct)
            by_check.setdefault(check, []).append(verdict.correct)
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
            "by_category": {name: _tally(hits) for name, hits in sorted(by_category.items())},
            "by_answer_match": {name: _tally(hits) for name, hits in sorted(by_check.items())},
            "rel_tol": self.rel_tol,
            "ordered_lists": self.ordered_lists,
        }
        return EvaluatorReport(metrics=metrics, per_item=per_item)
