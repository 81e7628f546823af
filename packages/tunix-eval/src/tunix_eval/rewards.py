"""The built-in rewards for reinforcement learning (weighted by name with
:func:`tunix_core.rewards.score_rewards`).

Every reward follows :class:`tunix_core.protocols.Reward`: parallel sequences of prompts,
completions, expected answers and item metas in, one float per completion out, ``NaN``
where the reward does not apply. Penalties (``length``, ``repetition``) lie in [-1, 0];
the others in [0, 1]. See ``docs/rl.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tunix_core.data.parse import parse_completion
from tunix_core.data.render import END_OF_TURN
from tunix_core.evaluation import check_answer
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.format import DEFAULT_MAX_TOKENS
from tunix_eval.normalize import clean_answer, parse_quantity
from tunix_eval.tokens import TokenCounter

# The competition format's tags in the order they must appear.
FORMAT_TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")
# An answer that is numerically close but not correct earns at most this much.
NUMERIC_CLOSENESS_SCALE = 0.5
# Word n-grams the repetition penalty counts.
REPETITION_NGRAM = 4


def format_strict(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
    *,
    context: RunContext,
) -> list[float]:
    """``format``: 1.0 when a completion is exactly the competition format (the verdict of
    :func:`tunix_core.data.parse.parse_completion`), else 0.0."""
    return [1.0 if parse_completion(text).format_exact else 0.0 for text in completions]


def format_approx(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
    *,
    context: RunContext,
) -> list[float]:
    """``format_approx``: 0.25 for each of ``<reasoning>``, ``</reasoning>``, ``<answer>``,
    ``</answer>`` that appears exactly once and after the tags credited before it, so a
    model that gets part of the format right is rewarded for that part."""
    return [_tag_credit(text) for text in completions]


def _tag_credit(text: str) -> float:
    credit, after = 0.0, -1
    for tag in FORMAT_TAGS:
        position = text.find(tag)
        if text.count(tag) == 1 and position > after:
            credit += 1 / len(FORMAT_TAGS)
            after = position
    return credit


def answer(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
    *,
    context: RunContext,
) -> list[float]:
    """``answer``: 1.0 when the ``<answer>`` block is correct by the item's
    ``meta.answer_match`` check (the evaluators' rule, :func:`tunix_core.evaluation.check_answer`,
    with the run host's answer checks). A wrong number earns closeness credit
    ``0.5 * max(0, 1 - |a - b| / max(1, |b|))``; anything else wrong 0.0. ``NaN`` when the
    item has no expected answer."""
    checks = context.answer_checks
    scores = []
    for index, (prompt, completion, wanted, item_meta) in enumerate(
        zip(prompts, completions, expected, meta, strict=True)
    ):
        if not wanted.strip():
            scores.append(math.nan)
            continue
        item_id = str(item_meta.get("id", f"completion {index}"))
        given = parse_completion(completion).answer
        prediction = Prediction(item_id, prompt, completion, wanted, item_meta)
        if check_answer(prediction, given, checks).correct:
            scores.append(1.0)
        else:
            scores.append(NUMERIC_CLOSENESS_SCALE * _numeric_closeness(given, wanted))
    return scores


def _numeric_closeness(given: str | None, wanted: str) -> float:
    """``max(0, 1 - |a - b| / max(1, |b|))`` when both are one plain number, else 0."""
    if given is None:
        return 0.0
    a, b = parse_quantity(clean_answer(given)), parse_quantity(clean_answer(wanted))
    if a is None or b is None or (a.unit, a.percent) != (b.unit, b.percent):
        return 0.0
    distance = abs(float(a.value) - float(b.value))
    return max(0.0, 1.0 - distance / max(1.0, abs(float(b.value))))


def whitespace_token_count(text: str) -> int:
    """Tokens as whitespace-separated words: cheap and tokenizer-free."""
    return len(text.split())


class LengthPenalty:
    """``length``: 0 for a completion of up to ``budget`` tokens, then linearly down to -1
    at twice the budget (and -1 beyond). Tokens are whitespace-separated words unless
    ``count_tokens`` (e.g. a real tokenizer's length) is given; text after
    ``<end_of_turn>`` is not counted."""

    def __init__(self, budget: int = DEFAULT_MAX_TOKENS, count_tokens: TokenCounter | None = None):
        if budget < 1:
            raise ValueError(f"length reward: budget must be >= 1, got {budget}")
        self.budget = budget
        self.count_tokens = count_tokens or whitespace_token_count

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        expected: Sequence[str],
        meta: Sequence[Mapping[str, Any]],
        *,
        context: RunContext,
    ) -> list[float]:
        return [
            self.penalty(self.count_tokens(text.split(END_OF_TURN, 1)[0])) for text in completions
        ]

    def penalty(self, tokens: int) -> float:
        over = max(0, tokens - self.budget)
        return -min(1.0, over / self.budget)


length = LengthPenalty()


def repetition(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
    *,
    context: RunContext,
) -> list[float]:
    """``repetition``: minus the fraction of a completion's word 4-grams that repeat an
    earlier one: 0 for text without loops, near -1 for a model stuck in one. A completion
    shorter than 4 words scores 0."""
    return [-_repeated_fraction(text.split()) for text in completions]


def _repeated_fraction(words: list[str]) -> float:
    grams = [
        tuple(words[i : i + REPETITION_NGRAM]) for i in range(len(words) - REPETITION_NGRAM + 1)
    ]
    if not grams:
        return 0.0
    return (len(grams) - len(set(grams))) / len(grams)
