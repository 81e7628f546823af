"""``format``: is each completion in the exact competition format, and how close is it?

Exact format: one ``<reasoning>`` block, then one ``<answer>`` block, both non-empty and
not nested, nothing but whitespace outside them (an ``<end_of_turn>`` may end it), and at
most ``max_tokens`` tokens. The tag rules are those of
:func:`tunix_core.data.parse.parse_completion`; tokens are counted approximately
(:mod:`tunix_eval.tokens`) unless a counter is given. Softer rates (tags present, answer
present) show progress before the format is exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from tunix_core.data.parse import parse_completion
from tunix_core.data.render import END_OF_TURN
from tunix_core.protocols import EvaluatorReport, Prediction, RunContext
from tunix_eval.tokens import APPROX_TOKEN_RULE, TokenCounter, approx_token_count

DEFAULT_MAX_TOKENS = 1024


class FormatEvaluator:
    """Format compliance; decides the ``format_ok`` verdict of every prediction."""

    name = "format"

    def __init__(
        self, max_tokens: int = DEFAULT_MAX_TOKENS, count_tokens: TokenCounter | None = None
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.count_tokens = count_tokens or approx_token_count
        self.token_rule = "custom counter" if count_tokens else APPROX_TOKEN_RULE

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        per_item: dict[str, dict[str, object]] = {}
        problems: Counter[str] = Counter()
        tallies: Counter[str] = Counter()
        token_counts: list[int] = []
        for prediction in predictions:
            parsed = parse_completion(prediction.completion)
            tokens = self.count_tokens(prediction.completion.split(END_OF_TURN, 1)[0])
            item_problems = list(parsed.problems)
            if tokens > self.max_tokens:
                item_problems.append(f"over the token budget ({tokens} > {self.max_tokens})")
            format_ok = not item_problems
            checks = {
                "format_ok": format_ok,
                "tags_exact": parsed.format_exact,
                "has_reasoning": parsed.has_reasoning,
                "has_answer": parsed.has_answer,
                # Both blocks with content: a model that echoes a system prompt holding empty
                # "<reasoning></reasoning>" tags has tags but not this.
                "has_both": bool(parsed.reasoning) and bool(parsed.answer),
                "answer_nonempty": bool(parsed.answer),
                "within_budget": tokens <= self.max_tokens,
            }
            tallies.update(key for key, passed in checks.items() if passed)
            problems.update(_problem_kind(p) for p in item_problems)
            token_counts.append(tokens)
            per_item[prediction.id] = {**checks, "tokens": tokens, "problems": item_problems}
        n = len(predictions)
        rates = {f"{key}_rate": tallies[key] / n if n else 0.0 for key in (
            "tags_exact", "has_reasoning", "has_answer", "has_both", "answer_nonempty",
            "within_budget")}  # fmt: skip
        metrics = {
            "n": n,
            "format_compliance": tallies["format_ok"] / n if n else 0.0,
            "format_ok": tallies["format_ok"],
            **rates,
            "mean_tokens": sum(token_counts) / n if n else 0.0,
            "max_tokens_seen": max(token_counts, default=0),
            "max_tokens": self.max_tokens,
            "token_counter": self.token_rule,
            "problems": dict(sorted(problems.items(), key=lambda kv: (-kv[1], kv[0]))),
        }
        return EvaluatorReport(metrics=metrics, per_item=per_item)


def _problem_kind(problem: str) -> str:
    """A problem without its details, so the histogram has few keys:
    ``over the token budget (900 > 512)`` -> ``over the token budget``."""
    return problem.split(" (", 1)[0].split(":", 1)[0]
