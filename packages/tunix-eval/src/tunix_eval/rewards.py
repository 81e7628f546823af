"""The built-in rewards for reinforcement learning (weighted by name with
:func:`tunix_core.rewards.score_rewards`).

Every reward follows :class:`tunix_core.protocols.Reward`: parallel sequences of prompts,
completions, expected answers and item metas in, one float per completion out, ``NaN``
where the reward does not apply. Penalties (``length``, ``repetition``) lie in [-1, 0];
the others in [0, 1]. ``judge`` takes options (``trainer.options.reward_options.judge``,
:class:`JudgeRewardOptions`); the rest take none. See ``docs/rl.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.config import FieldRuleError, at_least, one_of, structure
from tunix_core.data.parse import parse_completion
from tunix_core.data.render import END_OF_TURN
from tunix_core.errors import ConfigError
from tunix_core.evaluation import check_answer
from tunix_core.hacking import words
from tunix_core.layout import JUDGE_REWARD_CACHE, model_id
from tunix_core.protocols import Generator, ModelSpec, Prediction, RunContext
from tunix_core.registry import UnknownNameError
from tunix_eval.format import DEFAULT_MAX_TOKENS
from tunix_eval.judge import (
    JUDGE_PROMPT,
    MAX_SCORE,
    MIN_SCORE,
    judge_prompt,
    parse_judge_score,
    question_of,
)
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


# Words too common to say anything about relevance.
STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "how", "i",
    "in", "is", "it", "its", "of", "on", "or", "so", "that", "the", "then", "there", "this",
    "to", "was", "what", "when", "which", "who", "will", "with",
})  # fmt: skip
_FORMAT_TAG = re.compile(r"</?(?:reasoning|answer)>")


def relevance(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
    *,
    context: RunContext,
) -> list[float]:
    """``relevance``: TF-IDF cosine similarity in [0, 1] of a completion (its text before
    ``<end_of_turn>``, format tags removed) and its question (the prompt's user turn).
    Terms are lowercased words minus :data:`STOP_WORDS`; the documents that weigh them are
    the call's distinct questions and its completions, with the smoothed
    ``idf = ln((1 + N) / (1 + df)) + 1``. Model-free and cheap; it rewards on-topic text,
    so it pays for a question copied into the reasoning too (the ``hacking`` diagnostics
    flag that)."""
    questions = [_terms(question_of(prompt)) for prompt in prompts]
    answers = [_terms(_FORMAT_TAG.sub(" ", text.split(END_OF_TURN, 1)[0])) for text in completions]
    distinct = {tuple(sorted(q.elements())): q for q in questions}
    documents = [*distinct.values(), *answers]
    frequency: Counter[str] = Counter(term for doc in documents for term in doc)
    idf = {term: math.log((1 + len(documents)) / (1 + df)) + 1 for term, df in frequency.items()}
    return [_cosine(q, a, idf) for q, a in zip(questions, answers, strict=True)]


def _terms(text: str) -> Counter[str]:
    return Counter(word for word in words(text) if word not in STOP_WORDS)


def _cosine(first: Counter[str], second: Counter[str], idf: Mapping[str, float]) -> float:
    a = {t: c * idf[t] for t, c in first.items()}
    b = {t: c * idf[t] for t, c in second.items()}
    norm = math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values()))
    if not norm:
        return 0.0
    return min(1.0, sum(v * b.get(t, 0.0) for t, v in a.items()) / norm)


RUBRIC_FIELDS = ("question", "expected", "completion")


def _rubric(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as exc:
        raise FieldRuleError(attribute.name, f"not a format string: {exc}") from None
    unknown = names - set(RUBRIC_FIELDS)
    if unknown or "completion" not in names:
        raise FieldRuleError(attribute.name, "must contain {completion} and no placeholder but "
                             f"{{question}}, {{expected}}, {{completion}}; got {sorted(names)}")  # fmt: skip


@attrs.frozen
class JudgeRewardOptions:
    """Options of the ``judge`` reward (``trainer.options.reward_options.judge``).
    ``backend``/``preset``/``weights``/``tokenizer``/``dtype`` name the judge model as in
    ``model.*``; ``max_new_tokens`` bounds its reply and ``batch_size`` its prompts per
    call. ``rubric``: the judge's prompt with ``{question}``, ``{expected}`` and
    ``{completion}`` (``null``: the ``judge`` evaluator's rubric); the reply must hold a 1-5
    score as the evaluator parses it. ``disk_cache``: also keep scores in the run folder
    (``judge_reward_cache.jsonl``), so a resumed run does not ask again."""

    backend: str = "jax"
    preset: str = "gemma3-1b-it"
    weights: str = "default"
    tokenizer: str | None = None
    dtype: str = attrs.field(default="float32", validator=one_of("float32", "bfloat16"))
    max_new_tokens: int = attrs.field(default=32, validator=at_least(1))
    batch_size: int = attrs.field(default=8, validator=at_least(1))
    rubric: str | None = attrs.field(default=None, validator=_rubric)
    disk_cache: bool = True

    def spec(self) -> ModelSpec:
        return ModelSpec(self.preset, self.weights, self.tokenizer, self.dtype)

    def fingerprint(self) -> str:
        """What identifies the judge's verdicts: the model, its decoding and the rubric."""
        identity = [self.backend, model_id(self.preset, self.weights), self.tokenizer,
                    self.dtype, self.max_new_tokens, self.rubric or JUDGE_PROMPT]  # fmt: skip
        return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


class JudgeReward:
    """``judge``: a rubric LLM-as-judge's 1-5 score mapped to [0, 1] (``(score - 1) / 4``);
    ``NaN`` where the reply holds no score (a parse failure is never a score). The judge
    model is loaded through the run host's backends on first use, completions are judged
    in batches of ``batch_size``, and every verdict is cached by (prompt, completion,
    judge fingerprint): in memory, and in the run folder with ``disk_cache``."""

    def __init__(self, options: JudgeRewardOptions | None = None,
                 field: str = "reward_options.judge") -> None:  # fmt: skip
        self.options = options or JudgeRewardOptions()
        self.field = field
        self.fingerprint = self.options.fingerprint()
        self.cache: dict[str, float] = {}
        self._generator: Generator | None = None
        self._disk: Path | None = None

    def configure(
        self, options: Mapping[str, Any], *, field: str, context: RunContext
    ) -> JudgeReward:
        """A judge with ``options``, checked against the backend that will load its model."""
        configured = structure(options, JudgeRewardOptions, source="config", root=field)
        reward = JudgeReward(configured, field)
        reward.check(context)
        return reward

    def backend(self, context: RunContext) -> Any:
        try:
            return context.backends.load(self.options.backend)()
        except UnknownNameError as exc:
            raise ConfigError(f"{self.field}.backend: {exc}") from None

    def check(self, context: RunContext) -> None:
        """Raise a ConfigError naming ``<field>.<option>`` when the backend cannot load the
        judge model (an unknown preset, missing weights, ...)."""
        try:
            self.backend(context).validate(self.options.spec())
        except ConfigError as exc:
            raise ConfigError(_renamed(str(exc), self.field)) from None

    def generator(self, context: RunContext) -> Generator:
        if self._generator is None:
            self.check(context)
            try:
                self._generator = self.backend(context).load(self.options.spec(),
                                                             progress=context.progress)  # fmt: skip
            except (OSError, ValueError) as exc:
                raise ConfigError(f"{self.field}: the judge model "
                                  f"{model_id(self.options.preset, self.options.weights)} "
                                  f"cannot be loaded: {exc}") from None  # fmt: skip
        return self._generator

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        expected: Sequence[str],
        meta: Sequence[Mapping[str, Any]],
        *,
        context: RunContext,
    ) -> list[float]:
        self._read_disk(context)
        keys = [self.key(p, c) for p, c in zip(prompts, completions, strict=True)]
        missing: dict[str, Prediction] = {}
        for key, prompt, completion, wanted, item_meta in zip(
            keys, prompts, completions, expected, meta, strict=True
        ):
            if key not in self.cache and key not in missing:
                missing[key] = Prediction(key, prompt, completion, wanted, dict(item_meta))
        if missing:
            self._judge(list(missing.values()), context)
        return [self.cache[key] for key in keys]

    def key(self, prompt: str, completion: str) -> str:
        identity = json.dumps([prompt, completion, self.fingerprint])
        return hashlib.sha256(identity.encode()).hexdigest()

    def _judge(self, predictions: list[Prediction], context: RunContext) -> None:
        generator = self.generator(context)
        rubric = self.options.rubric or JUDGE_PROMPT
        size = self.options.batch_size
        for start in range(0, len(predictions), size):
            batch = predictions[start : start + size]
            replies = generator.generate([judge_prompt(p, rubric) for p in batch],
                                         max_new_tokens=self.options.max_new_tokens)  # fmt: skip
            if len(replies) != len(batch):
                raise ValueError(f"the judge model returned {len(replies)} replies for "
                                 f"{len(batch)} prompts")  # fmt: skip
            lines = []
            for prediction, reply in zip(batch, replies, strict=True):
                score = parse_judge_score(reply)
                value = math.nan if score is None else (score - MIN_SCORE) / (MAX_SCORE - MIN_SCORE)
                self.cache[prediction.id] = value
                lines.append(json.dumps({"key": prediction.id,
                                         "score": None if score is None else value,
                                         "reply": reply.strip()[:200]}))  # fmt: skip
            if self._disk is not None:
                with self._disk.open("a", encoding="utf-8") as out:
                    out.write("".join(line + "\n" for line in lines))

    def _read_disk(self, context: RunContext) -> None:
        """Load the run's cached verdicts once; a line cut by a crash is skipped (and
        ended, so the verdicts appended after it stay readable)."""
        if not self.options.disk_cache or context.run is None:
            return
        path = context.run.path / JUDGE_REWARD_CACHE
        if self._disk == path:
            return
        self._disk = path
        if not path.is_file():
            return
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            with path.open("a", encoding="utf-8") as out:
                out.write("\n")
        for line in text.splitlines():
            try:
                record = json.loads(line)
                score = record["score"]
                self.cache[str(record["key"])] = math.nan if score is None else float(score)
            except (ValueError, KeyError, TypeError):
                continue


def _renamed(message: str, field: str) -> str:
    """A backend's ``model.<option>: ...`` error as ``<field>.<option>: ...``."""
    if message.startswith("model."):
        return f"{field}.{message.removeprefix('model.')}"
    return f"{field}: {message}"


judge = JudgeReward()
