"""``judging-mix``: the judging-mix suite's scorecard, per domain (``meta.category``) and
overall, each rate with its binomial standard error.

For every completion:

- the strict format check: :func:`tunix_core.data.parse.parse_completion`'s exact format
  and at most ``max_tokens`` tokens (the competition's ~1,000; tokens counted as the
  ``format`` evaluator counts them, :mod:`tunix_eval.tokens`), and the share over that
  limit;
- on verifiable items (section ``verifiable``) the item's answer check;
- on open items (section ``open``, answer check ``rubric``) nothing by string match: a
  judge model scores them against their rubric (``--judge-model``; the ``judge``
  evaluator's :meth:`~tunix_eval.judge.JudgeEvaluator.rubric_scores`), per domain with
  standard errors; a reply without a score leaves its item unscored, never scored.
  Without a judge the summary says that open items report only the reference-free
  checks;
- the reference-free checks (empty or copied reasoning, the answer repeated in the
  reasoning, duplicated tags, an answer contradicting the reasoning's last result),
  per domain, when :data:`REFERENCE_FREE_MODULE` is installed (the ``hacking``
  diagnostics); otherwise the summary says they did not run.

:func:`read_scorecard` reads these results back from an ``eval_summary.json`` (with the
``judge`` evaluator's rubric scores where this scorecard has none) for ``tunix eval``,
``tunix compare``, ``tunix runs show`` and the report, which spell no field of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from tunix_core.data.parse import parse_completion
from tunix_core.data.render import END_OF_TURN
from tunix_core.evaluation import UNKNOWN, binomial_stderr, check_answer
from tunix_core.protocols import EvaluatorReport, Prediction, RunContext
from tunix_eval.format import DEFAULT_MAX_TOKENS
from tunix_eval.judge import (
    BY_DOMAIN,
    COUNT,
    MEAN_SCORE,
    MEAN_SCORE_STDERR,
    OPEN_SECTION,
    OVERALL,
    PASSED,
    RATE,
    RUBRIC,
    SCORED,
    STDERR,
    JudgeEvaluator,
    N,
    question_of,
    rubric_summary,
)
from tunix_eval.tokens import APPROX_TOKEN_RULE, approx_token_count

__all__ = ["OPEN_SECTION", "Figure", "JudgingMixEvaluator", "Scorecard", "read_scorecard"]
NO_JUDGE_NOTE = ("no judge model: open items (section 'open') report only the format, "
                 "token-limit and reference-free checks, not their rubric")  # fmt: skip
# The scorecard's own field names (the rate and rubric fields are judge's): written by
# the evaluator below and read back by read_scorecard, which every display goes through.
OPEN, VERIFIABLE = "open", "verifiable"
STRICT_FORMAT, OVER_TOKEN_LIMIT = "strict_format", "over_token_limit"
MAX_TOKENS_SEEN, ANSWER_ACCURACY = "max_tokens_seen", "answer_accuracy"
REFERENCE_FREE_FLAGGED = "reference_free_flagged"
JUDGE_CONFIGURED, NOTES = "judge_configured", "notes"
# What a display shows for a rubric figure of open items that no judge scored.
NO_JUDGE = "no judge"
# The hook for the reference-free checks: a module with
# ``hacking_flags(question, completion)`` whose result has ``as_dict() -> {check: bool |
# None}`` (None: the check does not apply). Imported by name so this evaluator runs, and
# says so, where that module is not installed.
REFERENCE_FREE_MODULE = "tunix_core.hacking"
ReferenceFreeChecks = Callable[[str, str], Mapping[str, bool | None]]


def installed_reference_free_checks() -> ReferenceFreeChecks | None:
    """The reference-free checks of :data:`REFERENCE_FREE_MODULE`, or None without it."""
    try:
        module = importlib.import_module(REFERENCE_FREE_MODULE)
    except ModuleNotFoundError:
        return None
    flags_of: Callable[[str, str], Any] = module.hacking_flags

    def checks(question: str, completion: str) -> Mapping[str, bool | None]:
        result: Mapping[str, bool | None] = flags_of(question, completion).as_dict()
        return result

    return checks


def _rate(hits: int, n: int) -> dict[str, Any]:
    return {N: n, COUNT: hits, RATE: hits / n if n else 0.0, STDERR: binomial_stderr(hits, n)}


def _group(items: Sequence[Mapping[str, Any]], pass_score: int | None) -> dict[str, Any]:
    """One domain's (or all items') rates; a rate over no items is left out. With a judge
    (``pass_score``), the open items' rubric scores too."""
    verifiable = [i for i in items if not i["open"]]
    group: dict[str, Any] = {
        N: len(items),
        OPEN: len(items) - len(verifiable),
        VERIFIABLE: len(verifiable),
        STRICT_FORMAT: _rate(sum(i["strict_format"] for i in items), len(items)),
        OVER_TOKEN_LIMIT: _rate(sum(i["over_token_limit"] for i in items), len(items)),
        MAX_TOKENS_SEEN: max((i["tokens"] for i in items), default=0),
    }
    if verifiable:
        group[ANSWER_ACCURACY] = _rate(sum(i["correct"] for i in verifiable), len(verifiable))
    if pass_score is not None and group[OPEN]:
        group[RUBRIC] = rubric_summary([i["rubric_score"] for i in items if i["open"]],
                                       pass_score)  # fmt: skip
    flagged: dict[str, dict[str, Any]] = {}
    for item in items:
        for check, flag in (item.get("reference_free") or {}).items():
            tally = flagged.setdefault(check, {"hits": 0, "n": 0})
            if flag is not None:  # None: the check does not apply to this completion
                tally["hits"] += bool(flag)
                tally["n"] += 1
    if flagged:
        group[REFERENCE_FREE_FLAGGED] = {
            check: _rate(t["hits"], t["n"]) for check, t in sorted(flagged.items())
        }
    return group


class JudgingMixEvaluator:
    """Per-domain and overall rates of the judging-mix suite (see the module docstring)."""

    name = "judging-mix"

    def __init__(
        self,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        judge_configured: bool = False,
        reference_free: ReferenceFreeChecks | None = None,
        judge: JudgeEvaluator | None = None,
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        # The judge that scores open items by their rubric; judge_configured alone says a
        # judge runs elsewhere (the summary then makes no claim that it did not).
        self.judge = judge
        self.judge_configured = judge_configured or judge is not None
        self.reference_free = reference_free or installed_reference_free_checks()

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        per_item: dict[str, dict[str, Any]] = {}
        by_domain: dict[str, list[dict[str, Any]]] = {}
        for prediction in predictions:
            completion = prediction.completion.split(END_OF_TURN, 1)[0]
            parsed = parse_completion(completion)
            tokens = approx_token_count(completion)
            is_open = prediction.meta.get("section") == OPEN_SECTION
            item: dict[str, Any] = {
                "open": is_open,
                "tokens": tokens,
                "over_token_limit": tokens > self.max_tokens,
                "strict_format": parsed.format_exact and tokens <= self.max_tokens,
                "correct": (not is_open and check_answer(prediction, parsed.answer,
                                                         context.answer_checks).correct),
            }  # fmt: skip
            if self.reference_free is not None:
                item["reference_free"] = dict(
                    self.reference_free(question_of(prediction.prompt), completion)
                )
            per_item[prediction.id] = item
            domain = str(prediction.meta.get("category") or UNKNOWN)
            by_domain.setdefault(domain, []).append(item)
        open_items = [p for p in predictions if p.meta.get("section") == OPEN_SECTION]
        pass_score = None
        if self.judge is not None:
            pass_score = self.judge.options.pass_score
            for prediction, (score, _) in zip(
                open_items, self.judge.rubric_scores(open_items, context), strict=True
            ):
                per_item[prediction.id]["rubric_score"] = score
        everything = [item for items in by_domain.values() for item in items]
        notes = [] if self.judge_configured else [NO_JUDGE_NOTE]
        unscored = sum(per_item[p.id].get("rubric_score", 0) is None for p in open_items)
        if unscored:
            notes.append(f"{unscored} of {len(open_items)} open item(s) unscored: the judge's "
                         "reply held no score (counted in rubric.unscored, never as a score)")  # fmt: skip
        if self.reference_free is None:
            notes.append(f"reference-free checks did not run: {REFERENCE_FREE_MODULE} is "
                         "not installed")  # fmt: skip
        metrics = {
            OVERALL: _group(everything, pass_score),
            BY_DOMAIN: {
                name: _group(items, pass_score) for name, items in sorted(by_domain.items())
            },
            "max_tokens": self.max_tokens,
            "token_counter": APPROX_TOKEN_RULE,
            JUDGE_CONFIGURED: self.judge_configured,
            "reference_free_checks": self.reference_free is not None,
            NOTES: notes,
        }
        # Per item only what the scorecard lacks: the answer verdict stays accuracy's.
        return EvaluatorReport(
            metrics=metrics,
            per_item={
                item_id: {k: v for k, v in item.items() if k != "correct"}
                for item_id, item in per_item.items()
            },
        )


@attrs.frozen
class Figure:
    """One figure of a scorecard group as the displays show it. ``name`` is its path in
    the group (``strict_format``, ``rubric.mean_score``,
    ``reference_free_flagged.empty_reasoning``); a rate is a share, the mean score is on
    the judge's 1-5 scale. ``n``: the items it is over. A ``value`` of None with
    ``absent`` set says why it was not measured (:data:`NO_JUDGE`)."""

    name: str
    value: float | None
    stderr: float | None
    n: int
    is_rate: bool = True
    absent: str = ""

    @property
    def reference_free(self) -> bool:
        """Whether it is a reference-free check (the displays give those a table)."""
        return self.name.startswith(f"{REFERENCE_FREE_FLAGGED}.")

    @property
    def label(self) -> str:
        """Its name in a table of its kind: a reference-free check by the check's name."""
        return self.name.removeprefix(f"{REFERENCE_FREE_FLAGGED}.")


@attrs.frozen
class Group:
    """One domain, or all of them (``overall``): items, open items and figures."""

    items: int
    open: int
    figures: tuple[Figure, ...]

    def figure(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


@attrs.frozen
class Scorecard:
    """An evaluation's judging-mix results: ``overall`` first, then each domain by name,
    and the notes that say what was not measured."""

    groups: dict[str, Group]
    notes: tuple[str, ...]

    def columns(self) -> list[Figure]:
        """One figure of each name any group has, in the order the groups list them."""
        first: dict[str, Figure] = {}
        for group in self.groups.values():
            for figure in group.figures:
                first.setdefault(figure.name, figure)
        return list(first.values())


def _rate_figure(name: str, record: Mapping[str, Any]) -> Figure:
    return Figure(name, record.get(RATE), record.get(STDERR), int(record.get(N) or 0))


def _read_group(group: Mapping[str, Any], rubric: Mapping[str, Any] | None,
                absent: str) -> Group:  # fmt: skip
    figures = [_rate_figure(key, group[key])
               for key in (STRICT_FORMAT, OVER_TOKEN_LIMIT, ANSWER_ACCURACY) if key in group]  # fmt: skip
    open_items = int(group.get(OPEN, rubric.get(N, 0) if rubric else 0))
    mean_name, passed_name = f"{RUBRIC}.{MEAN_SCORE}", f"{RUBRIC}.{PASSED}"
    if rubric is not None:
        figures += [Figure(mean_name, rubric.get(MEAN_SCORE), rubric.get(MEAN_SCORE_STDERR),
                           int(rubric.get(SCORED) or 0), is_rate=False),
                    _rate_figure(passed_name, rubric.get(PASSED) or {})]  # fmt: skip
    elif open_items:
        figures += [Figure(mean_name, None, None, 0, is_rate=False, absent=absent),
                    Figure(passed_name, None, None, 0, absent=absent)]  # fmt: skip
    figures += [_rate_figure(f"{REFERENCE_FREE_FLAGGED}.{check}", record)
                for check, record in (group.get(REFERENCE_FREE_FLAGGED) or {}).items()]  # fmt: skip
    return Group(int(group.get(N, open_items)), open_items, tuple(figures))


def read_scorecard(summary: Mapping[str, Any]) -> Scorecard | None:
    """The judging-mix results of an ``eval_summary.json``: this evaluator's scorecard,
    its open items' rubric figures from the ``judge`` evaluator where the scorecard has
    none; None when the summary has neither."""
    evaluators = summary.get("evaluators") or {}
    mix: Mapping[str, Any] = evaluators.get(JudgingMixEvaluator.name) or {}
    judged: Mapping[str, Any] = (evaluators.get(JudgeEvaluator.name) or {}).get(RUBRIC) or {}
    if not mix and not judged:
        return None
    # .get throughout: a summary edited by hand shows what it has rather than a traceback.
    scorecards = {OVERALL: mix.get(OVERALL) or {}, **(mix.get(BY_DOMAIN) or {})} if mix else {}
    rubrics = {OVERALL: judged.get(OVERALL), **(judged.get(BY_DOMAIN) or {})} if judged else {}
    absent = "not judged" if mix.get(JUDGE_CONFIGURED) else NO_JUDGE
    groups = {
        name: _read_group(scorecards.get(name, {}),
                          scorecards.get(name, {}).get(RUBRIC) or rubrics.get(name), absent)
        for name in dict.fromkeys([*scorecards, *rubrics])
    }  # fmt: skip
    notes = list(mix.get(NOTES) or [])
    if judged:  # a `judge` evaluator beside it scored the open items after all
        notes = [note for note in notes if note != NO_JUDGE_NOTE]
    return Scorecard(groups, tuple(notes))
