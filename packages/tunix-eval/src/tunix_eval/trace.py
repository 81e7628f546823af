"""``trace``: what the reasoning looks like.

Steps are the non-empty lines of the reasoning block (the training format writes one
step per line). Lengths are approximate tokens (:mod:`tunix_eval.tokens`). For correct
answers it checks whether the reasoning itself states the answer's value (a correct answer
without reasoning counts as not stated), a sign that the answer follows from the trace
instead of appearing from nowhere.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from tunix_core.data.parse import parse_completion
from tunix_core.evaluation import check_answer
from tunix_core.protocols import AnswerOptions, EvaluatorReport, Prediction, RunContext
from tunix_eval.normalize import mentioned_in
from tunix_eval.tokens import APPROX_TOKEN_RULE, approx_token_count


def count_steps(reasoning: str) -> int:
    """Non-empty lines of a reasoning block."""
    return sum(1 for line in reasoning.splitlines() if line.strip())


def _distribution(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "max": 0.0}
    return {"mean": statistics.fmean(values), "median": float(statistics.median(values)),
            "max": float(max(values))}  # fmt: skip


class TraceEvaluator:
    """Steps per answer, reasoning length, answers supported by their reasoning."""

    name = "trace"

    def __init__(self, rel_tol: float = 1e-6) -> None:
        self.rel_tol = rel_tol

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        checks = context.answer_checks
        options = AnswerOptions(rel_tol=self.rel_tol)
        per_item: dict[str, dict[str, Any]] = {}
        steps: list[int] = []
        tokens: list[int] = []
        correct = supported = 0
        for prediction in predictions:
            parsed = parse_completion(prediction.completion)
            item: dict[str, Any] = {"reasoning_steps": 0, "reasoning_tokens": 0,
                                    "answer_in_reasoning": None}  # fmt: skip
            if parsed.reasoning:
                item["reasoning_steps"] = count_steps(parsed.reasoning)
                item["reasoning_tokens"] = approx_token_count(parsed.reasoning)
                steps.append(item["reasoning_steps"])
                tokens.append(item["reasoning_tokens"])
            if check_answer(prediction, parsed.answer, checks, options).correct:
                correct += 1
                item["answer_in_reasoning"] = bool(parsed.reasoning) and mentioned_in(
                    prediction.expected, parsed.reasoning or "", rel_tol=self.rel_tol
                )
                supported += item["answer_in_reasoning"]
            per_item[prediction.id] = item
        n = len(predictions)
        metrics = {
            "n": n,
            "with_reasoning": len(steps),
            "with_reasoning_rate": len(steps) / n if n else 0.0,
            "steps": _distribution(steps),
            "reasoning_tokens": _distribution(tokens),
            "correct": correct,
            "answer_in_reasoning": supported,
            "answer_in_reasoning_rate": supported / correct if correct else None,
            "token_counter": APPROX_TOKEN_RULE,
        }
        return EvaluatorReport(metrics=metrics, per_item=per_item)
