"""``hacking``: reward-hacking diagnostics of each completion, reference-free.

The checks are :mod:`tunix_core.hacking`'s (the ``grpo`` trainer logs the same ones per
step): empty or copied reasoning, the answer repeated inside the reasoning, duplicated
format tags, and an answer that contradicts the reasoning's last numeric result. The
question is the prompt's user turn (:func:`tunix_eval.judge.question_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tunix_core.hacking import CHECKS, hacking_flags, hacking_rates
from tunix_core.protocols import EvaluatorReport, Prediction, RunContext
from tunix_eval.judge import question_of


class HackingEvaluator:
    """Per check: how many completions it flags and their share; per item, the flags."""

    name = "hacking"

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        flags = [hacking_flags(question_of(p.prompt), p.completion) for p in predictions]
        per_item: dict[str, dict[str, Any]] = {
            p.id: f.as_dict() for p, f in zip(predictions, flags, strict=True)
        }
        counts = {check: sum(bool(getattr(f, check)) for f in flags) for check in CHECKS}
        metrics: dict[str, Any] = {
            "n": len(predictions),
            "flagged": counts,
            "rates": hacking_rates(flags) or dict.fromkeys(CHECKS, 0.0),
            "any_flag_rate": (
                sum(any(bool(v) for v in f.as_dict().values()) for f in flags) / len(flags)
                if flags
                else 0.0
            ),
            "contradiction_applicable": sum(f.contradiction is not None for f in flags),
        }
        return EvaluatorReport(metrics=metrics, per_item=per_item)
