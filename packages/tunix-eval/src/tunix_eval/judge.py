"""``judge``: a rubric LLM-as-judge, off by default.

Any model a backend plugin can load grades each completion against the reference answer
with the fixed rubric :data:`JUDGE_PROMPT` (a 1-5 score; 3 or more means the final answer
is right). The score is parsed leniently (:func:`parse_judge_score`); a reply without one
counts as a parse failure, never as a score. Every verdict is set beside the ``accuracy``
rule's verdict, and disagreements are reported, so a judge can audit the normaliser and
the other way round.

Open items (``meta.section`` ``open``, as in the judging-mix suite) carry a rubric as
their expected text instead of an answer: the judge scores them against it with
:data:`RUBRIC_PROMPT`, and reports those scores per domain (``meta.category``) with
standard errors, apart from the answer items' agreement with ``accuracy``. The
``judging-mix`` evaluator asks the same judge for the same scores
(:meth:`JudgeEvaluator.rubric_scores`); each prompt is sent to the model once.

The judge model is loaded by a model backend (``backend.load(spec)``) from the
:class:`ModelSpec` that :class:`JudgeOptions` describe. Options come from the constructor,
from ``TUNIX_JUDGE_*`` environment variables when the evaluator is built with no
arguments (as ``tunix run`` does), or from ``tunix eval --judge-model``.
"""

from __future__ import annotations

import math
import os
import re
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs

from tunix_core.data.parse import parse_completion
from tunix_core.data.render import END_OF_TURN, USER_TURN, render_prompt
from tunix_core.errors import ConfigError
from tunix_core.evaluation import UNKNOWN, binomial_stderr, check_answer
from tunix_core.layout import model_id
from tunix_core.protocols import EvaluatorReport, Generator, ModelSpec, Prediction, RunContext
from tunix_core.registry import UnknownNameError

JUDGE_PROMPT = """\
You are grading a response to a problem. Compare the response's final answer with the \
reference answer, then check the reasoning.

Problem:
{question}

Reference answer:
{expected}

Response:
{completion}

Rubric:
5 - final answer equivalent to the reference; reasoning correct and complete
4 - final answer equivalent to the reference; reasoning has small gaps or slips
3 - final answer equivalent to the reference; reasoning missing or wrong
2 - final answer wrong or missing; reasoning partly right
1 - final answer wrong or missing; reasoning wrong or missing

Reply with one line: SCORE: <a number from 1 to 5>"""

# Open items: a task and a rubric (what a good answer must contain, what it must avoid).
OPEN_SECTION = "open"
RUBRIC_PROMPT = """\
You are grading a response to an open task against its rubric.

Task:
{question}

Rubric:
{expected}

Response:
{completion}

Scores:
5 - does every point the rubric asks for and nothing it says to avoid
4 - does most points and nothing it says to avoid
3 - does some points, or most of them and one thing it says to avoid
2 - does few points, or several things it says to avoid
1 - off the task, empty, or mostly what the rubric says to avoid

Reply with one line: SCORE: <a number from 1 to 5>"""

MIN_SCORE, MAX_SCORE = 1, 5
MAX_RESPONSE_CHARS = 4000  # keeps a runaway completion from filling the judge's context
_LABELLED = re.compile(
    r"score\W{0,3}(?:is|of|=)?\W{0,3}([1-5])(?:\s*(?:/|out of)\s*5)?(?!\d)", re.I
)
_OUT_OF_FIVE = re.compile(r"(?<![\d.])([1-5])\s*(?:/|out of)\s*5(?!\d)", re.I)
_LEADING = re.compile(r"^\W{0,3}([1-5])(?![\d.])")

ENV_PREFIX = "TUNIX_JUDGE_"

# Field names of the rubric results: ``rubric_summary``'s record, the rate record
# (``{n, count, rate, stderr}``) it shares with the judging-mix scorecard, and the
# ``rubric`` metric's groups. Written here and in :mod:`tunix_eval.judging_mix`, read back
# by :func:`tunix_eval.judging_mix.read_scorecard` for every display.
RUBRIC, OVERALL, BY_DOMAIN = "rubric", "overall", "by_domain"
N, COUNT, RATE, STDERR = "n", "count", "rate", "stderr"
SCORED, UNSCORED, PASSED = "scored", "unscored", "passed"
MEAN_SCORE, MEAN_SCORE_STDERR = "mean_score", "mean_score_stderr"


def parse_judge_score(reply: str) -> int | None:
    """The 1-5 score in a judge's reply: ``SCORE: 4``, ``**Score**: 4/5``, ``4 out of 5``
    or a reply that starts with the digit. ``None`` when there is no score."""
    for pattern in (_LABELLED, _OUT_OF_FIVE, _LEADING):
        match = pattern.search(reply.strip())
        if match:
            return int(match.group(1))
    return None


def question_of(prompt: str) -> str:
    """The user turn of a rendered prompt (system prompt and question), or the prompt."""
    start = prompt.find(USER_TURN)
    if start == -1:
        return prompt.strip()
    body = prompt[start + len(USER_TURN) :]
    return body.split(END_OF_TURN, 1)[0].strip()


def judge_prompt(prediction: Prediction, rubric: str = JUDGE_PROMPT) -> str:
    """The rendered chat turn that asks the judge about ``prediction``: ``rubric`` with
    its ``{question}``, ``{expected}`` and ``{completion}`` filled in."""
    completion = prediction.completion.split(END_OF_TURN, 1)[0].strip()
    if len(completion) > MAX_RESPONSE_CHARS:
        completion = completion[:MAX_RESPONSE_CHARS] + " [cut]"
    text = rubric.format(
        question=question_of(prediction.prompt) or "(not given)",
        expected=prediction.expected,
        completion=completion or "(empty)",
    )
    return render_prompt(text, system_prompt="")


@attrs.frozen
class JudgeOptions:
    """Which model judges and how. ``backend``/``preset``/``weights``/``tokenizer``/``dtype``
    mean what they mean in a run config (``model.*``); ``pass_score`` is the lowest score
    that counts as a correct final answer."""

    backend: str = "jax"
    preset: str = "gemma3-1b-it"
    weights: str = "default"
    tokenizer: str | None = None
    dtype: str = attrs.field(
        default="float32", validator=attrs.validators.in_(("float32", "bfloat16"))
    )
    max_new_tokens: int = attrs.field(default=32, validator=attrs.validators.ge(1))
    batch_size: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    pass_score: int = attrs.field(default=3, validator=[attrs.validators.ge(MIN_SCORE),
                                                        attrs.validators.le(MAX_SCORE)])  # fmt: skip

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> JudgeOptions:
        """Options from ``TUNIX_JUDGE_BACKEND``, ``_PRESET``, ``_WEIGHTS``, ``_TOKENIZER``,
        ``_DTYPE``, ``_MAX_NEW_TOKENS``, ``_BATCH_SIZE``, ``_PASS_SCORE``; defaults otherwise."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in attrs.fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[field.name] = int(raw) if field.type in ("int", int) else raw
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{field.name.upper()}: expected a whole number, "
                                  f"got {raw!r}") from None  # fmt: skip
        try:
            return cls(**values)
        except ValueError as exc:
            raise ConfigError(f"judge options from {ENV_PREFIX}*: {exc}") from None

    def spec(self) -> ModelSpec:
        """The judge model, as the backend loads it."""
        return ModelSpec(self.preset, self.weights, self.tokenizer, self.dtype)


def is_open(prediction: Prediction) -> bool:
    """Whether ``prediction`` is an open item, judged by its rubric."""
    return prediction.meta.get("section") == OPEN_SECTION


def rubric_summary(scores: Sequence[int | None], pass_score: int) -> dict[str, Any]:
    """Rubric scores of some open items (None: the reply held no score): how many were
    scored, their mean with its standard error, and the share at or above ``pass_score``
    with its binomial standard error. Unscored items count in ``unscored`` only; with
    nothing scored the mean and rates are None."""
    scored = [s for s in scores if s is not None]
    passed = sum(s >= pass_score for s in scored)
    stderr = statistics.stdev(scored) / math.sqrt(len(scored)) if len(scored) > 1 else None
    rate = passed / len(scored) if scored else None
    return {
        N: len(scores),
        SCORED: len(scored),
        UNSCORED: len(scores) - len(scored),
        MEAN_SCORE: statistics.fmean(scored) if scored else None,
        MEAN_SCORE_STDERR: stderr,
        PASSED: {
            N: len(scored),
            COUNT: passed,
            RATE: rate,
            STDERR: binomial_stderr(passed, len(scored)) if scored else None,
        },
    }


class JudgeEvaluator:
    """Rubric scores from a model, and where they disagree with ``accuracy``."""

    name = "judge"

    def __init__(self, options: JudgeOptions | None = None) -> None:
        self.options = options if options is not None else JudgeOptions.from_env()
        self._generator: Generator | None = None
        self._replies: dict[str, str] = {}  # judge prompt -> the model's reply

    def generator(self, context: RunContext) -> Generator:
        """The judge model, loaded through the run host's backend registry on first use."""
        if self._generator is None:
            try:
                backend = context.backends.load(self.options.backend)()
            except UnknownNameError as exc:
                raise ConfigError(f"judge backend: {exc}") from None
            spec = self.options.spec()
            backend.validate(spec)
            self._generator = backend.load(spec, progress=context.progress)
        return self._generator

    def replies(self, prompts: Sequence[str], context: RunContext) -> list[str]:
        """The judge model's replies to ``prompts``, in batches of ``batch_size``; a
        prompt it has answered before is not sent again."""
        asked = [p for p in dict.fromkeys(prompts) if p not in self._replies]
        size = self.options.batch_size
        for start in range(0, len(asked), size):
            batch = asked[start : start + size]
            out = self.generator(context).generate(
                batch, max_new_tokens=self.options.max_new_tokens
            )
            if len(out) != len(batch):
                raise ValueError(
                    f"the judge model returned {len(out)} replies for {len(batch)} prompts"
                )
            self._replies.update(zip(batch, out, strict=True))
        return [self._replies[p] for p in prompts]

    def rubric_scores(self, predictions: Sequence[Prediction],
                      context: RunContext) -> list[tuple[int | None, str]]:  # fmt: skip
        """(score, reply) of each open item against its rubric; None where the reply
        holds no score."""
        replies = self.replies([judge_prompt(p, RUBRIC_PROMPT) for p in predictions], context)
        return [(parse_judge_score(reply), reply) for reply in replies]

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        answered = [p for p in predictions if not is_open(p)]
        replies = self.replies([judge_prompt(p) for p in answered], context)
        report = self._report(answered, replies, context)
        open_items = [p for p in predictions if is_open(p)]
        if not open_items:
            return report
        verdicts = self.rubric_scores(open_items, context)
        per_item = dict(report.per_item)
        by_domain: dict[str, list[int | None]] = {}
        for prediction, (score, reply) in zip(open_items, verdicts, strict=True):
            per_item[prediction.id] = {"rubric_score": score, "judge_reply": reply.strip()[:200]}
            domain = str(prediction.meta.get("category") or UNKNOWN)
            by_domain.setdefault(domain, []).append(score)
        pass_score = self.options.pass_score
        rubric = {
            OVERALL: rubric_summary([score for score, _ in verdicts], pass_score),
            BY_DOMAIN: {d: rubric_summary(s, pass_score) for d, s in sorted(by_domain.items())},
        }
        return EvaluatorReport(metrics={**report.metrics, RUBRIC: rubric}, per_item=per_item)

    def _report(self, predictions: Sequence[Prediction], replies: Sequence[str],
                context: RunContext) -> EvaluatorReport:  # fmt: skip
        """The answer items' scores and their agreement with ``accuracy``."""
        per_item: dict[str, dict[str, Any]] = {}
        histogram: Counter[int] = Counter()
        agree = judge_only = accuracy_only = 0
        disagreeing: list[str] = []
        checks = context.answer_checks  # as the accuracy evaluator's
        for prediction, reply in zip(predictions, replies, strict=True):
            score = parse_judge_score(reply)
            answer = parse_completion(prediction.completion).answer
            accuracy_correct = check_answer(prediction, answer, checks).correct
            judged: bool | None = None if score is None else score >= self.options.pass_score
            if score is not None:
                histogram[score] += 1
                if judged == accuracy_correct:
                    agree += 1
                else:
                    disagreeing.append(prediction.id)
                    judge_only += bool(judged)
                    accuracy_only += accuracy_correct
            per_item[prediction.id] = {
                "judge_score": score,
                "judge_correct": judged,
                "accuracy_correct": accuracy_correct,
                "agrees_with_accuracy": None if judged is None else judged == accuracy_correct,
                "judge_reply": reply.strip()[:200],
            }
        scored = sum(histogram.values())
        metrics = {
            "n": len(predictions),
            "scored": scored,
            "parse_failures": len(predictions) - scored,
            "mean_score": sum(s * c for s, c in histogram.items()) / scored if scored else None,
            "score_histogram": {str(s): histogram[s] for s in range(MIN_SCORE, MAX_SCORE + 1)},
            "judged_correct_rate": (
                sum(c for s, c in histogram.items() if s >= self.options.pass_score) / scored
                if scored
                else None
            ),
            "agreement_with_accuracy": agree / scored if scored else None,
            "disagreements": len(disagreeing),
            "judge_correct_accuracy_wrong": judge_only,
            "accuracy_correct_judge_wrong": accuracy_only,
            "disagreeing_ids": disagreeing[:50],
            "model": f"{model_id(self.options.preset, self.options.weights)} via {self.options.backend}",
            "pass_score": self.options.pass_score,
        }
        return EvaluatorReport(metrics=metrics, per_item=per_item)
