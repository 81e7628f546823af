"""Before/after comparison of two evaluations: metric deltas and the items that flipped.

An evaluation is a folder holding ``eval_summary.json`` and ``predictions.jsonl``: a run
directory (its final evaluation), its ``baseline/`` folder, or a ``tunix eval --out``
folder. A run directory alone compares its baseline with its final evaluation. A run that
also evaluated its dataset's ood split reports it under ``splits`` in its summary; its
rows (``ood: answer_accuracy``, ...) and standard errors come right after the eval split's.
An evaluation with a judging-mix scorecard (:func:`tunix_eval.judging_mix.read_scorecard`)
adds each domain's figures before and after, each with its standard error, and the
scorecard's notes (what was not measured: no judge, no reference-free checks).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.errors import TunixError
from tunix_core.evaluation import read_predictions, read_summary
from tunix_core.layout import BASELINE, EVAL_SUMMARY, PREDICTIONS, RunLayout
from tunix_eval.judging_mix import Figure, Scorecard, read_scorecard
from tunix_eval.report import figure_text, pct, printable, text_table

# (row name, path into the summary); rows absent from both sides are left out.
METRIC_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("answer_accuracy", ("primary_score",)),
    ("format_compliance", ("scorecard", "overall", "format_compliance")),
    ("tags_present", ("evaluators", "format", "has_both_rate")),
    ("answer_present", ("evaluators", "format", "answer_nonempty_rate")),
    ("within_token_budget", ("evaluators", "format", "within_budget_rate")),
    ("accuracy_when_answered", ("evaluators", "accuracy", "accuracy_when_answered")),
    ("answer_in_reasoning", ("evaluators", "trace", "answer_in_reasoning_rate")),
    ("judged_correct", ("evaluators", "judge", "judged_correct_rate")),
)
COUNT_ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("mean_steps", ("evaluators", "trace", "steps", "mean")),
    ("mean_reasoning_tokens", ("evaluators", "trace", "reasoning_tokens", "mean")),
    ("mean_judge_score", ("evaluators", "judge", "mean_score")),
)


@attrs.frozen
class Evaluation:
    """One side of a comparison."""

    name: str
    path: Path
    summary: dict[str, Any]
    predictions: list[dict[str, Any]]


@attrs.frozen
class Flip:
    id: str
    expected: str
    before: str | None
    after: str | None
    category: str


@attrs.frozen
class FigureChange:
    """One judging-mix figure of one group (``overall`` or a domain), before and after."""

    group: str
    before: Figure | None
    after: Figure | None

    @property
    def name(self) -> str:
        return next(f.name for f in (self.before, self.after) if f is not None)

    @property
    def change(self) -> float | None:
        before, after = self.before, self.after
        if before is None or after is None or before.value is None or after.value is None:
            return None
        return after.value - before.value

    @property
    def change_stderr(self) -> float | None:
        """The standard error of the change, the two evaluations taken as independent."""
        before, after = self.before, self.after
        if self.change is None or before is None or after is None:
            return None
        if before.stderr is None or after.stderr is None:
            return None
        return math.hypot(before.stderr, after.stderr)


@attrs.frozen
class Comparison:
    before: Evaluation
    after: Evaluation
    rows: list[tuple[str, float | None, float | None, bool]]  # name, before, after, is_rate
    fixed: list[Flip]  # wrong before, correct after
    broken: list[Flip]  # correct before, wrong after
    common_items: int
    # The judging-mix scorecards (None: that side has none) and their figures side by side.
    scorecards: tuple[Scorecard | None, Scorecard | None] = (None, None)
    figures: list[FigureChange] = attrs.field(factory=list)


def figure_changes(before: Scorecard | None, after: Scorecard | None) -> list[FigureChange]:
    """Each group's figures of two scorecards side by side, in the order they list them."""
    sides = [card for card in (before, after) if card is not None]
    groups = dict.fromkeys(name for card in sides for name in card.groups)
    names = dict.fromkeys(f.name for card in sides for f in card.columns())
    changes = []
    for group in groups:
        for name in names:
            pair = [card.groups[group].figure(name) if card and group in card.groups else None
                    for card in (before, after)]  # fmt: skip
            if pair[0] is not None or pair[1] is not None:
                changes.append(FigureChange(group, pair[0], pair[1]))
    return changes


def _is_run(path: Path) -> bool:
    return RunLayout(path).manifest_path.is_file()


def resolve(path: Path) -> Path:
    """The evaluation folder ``path`` names (a folder, or its eval_summary.json)."""
    if path.is_file() and path.name == EVAL_SUMMARY:
        return path.parent
    if not path.is_dir():
        raise TunixError(f"{path}: not a run directory or evaluation folder")
    if not (path / EVAL_SUMMARY).is_file():
        if _is_run(path):
            raise TunixError(f"{path}: the run has no final evaluation yet ({EVAL_SUMMARY} is "
                             f"missing); finish it with `tunix run --resume {path}`")  # fmt: skip
        raise TunixError(f"{path}: no {EVAL_SUMMARY} here")
    return path


def resolve_pair(first: Path, second: Path | None) -> tuple[Path, Path]:
    """(before, after) folders: two evaluations, or a run's baseline and final one."""
    if second is not None:
        return resolve(first), resolve(second)
    if not _is_run(first):
        raise TunixError(f"{first}: give two evaluations, or one run directory to compare its "
                         "baseline with its final evaluation")  # fmt: skip
    baseline = RunLayout(first).baseline_dir
    if not (baseline / EVAL_SUMMARY).is_file():
        raise TunixError(f"{first}: the run has no baseline evaluation ({baseline / EVAL_SUMMARY})")
    return resolve(baseline), resolve(first)


def load(path: Path) -> Evaluation:
    summary = read_summary(path / EVAL_SUMMARY)
    if summary is None:  # resolve() checked it exists; a race with a deletion
        raise TunixError(f"{path / EVAL_SUMMARY}: missing")
    predictions = read_predictions(path / PREDICTIONS)
    name = path.name if path.name != BASELINE else f"{path.parent.name}/{BASELINE}"
    return Evaluation(name, path, summary, predictions)


def _dig(data: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    value: Any = data
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def split_names(*summaries: Mapping[str, Any]) -> list[str]:
    """The other splits (ood) any of ``summaries`` reports under ``splits``."""
    return sorted({name for summary in summaries for name in summary.get("splits", {})})


def _split_rows(before: Evaluation, after: Evaluation) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (f"{split}: {metric}", ("splits", split, metric))
        for split in split_names(before.summary, after.summary)
        for metric in ("answer_accuracy", "format_compliance")
    )


def accuracy_stderrs(summary: Mapping[str, Any]) -> dict[str, float]:
    """The answer accuracy's standard error per split: ``eval``, then each other split."""
    errors = {"eval": float(summary["primary_score_stderr"])}
    for split, result in summary.get("splits", {}).items():
        errors[split] = float(result["answer_accuracy_stderr"])
    return errors


def compare(before: Evaluation, after: Evaluation) -> Comparison:
    rows: list[tuple[str, float | None, float | None, bool]] = []
    metric_rows = METRIC_ROWS[:2] + _split_rows(before, after) + METRIC_ROWS[2:]
    for rows_spec, is_rate in ((metric_rows, True), (COUNT_ROWS, False)):
        for name, keys in rows_spec:
            b, a = _dig(before.summary, keys), _dig(after.summary, keys)
            if b is not None or a is not None:
                rows.append((name, b, a, is_rate))
    for key in ("section", "category", "difficulty"):
        groups = sorted(set(before.summary["scorecard"][f"by_{key}"])
                        | set(after.summary["scorecard"][f"by_{key}"]))  # fmt: skip
        if len(groups) < 2:
            continue
        for group in groups:
            keys = ("scorecard", f"by_{key}", group, "answer_accuracy")
            rows.append(
                (f"{key}: {group}", _dig(before.summary, keys), _dig(after.summary, keys), True)
            )
    previous = {p["id"]: p for p in before.predictions}
    fixed: list[Flip] = []
    broken: list[Flip] = []
    common = 0
    for record in after.predictions:
        old = previous.get(record["id"])
        if old is None:
            continue
        common += 1
        if bool(old["correct"]) == bool(record["correct"]):
            continue
        flip = Flip(record["id"], record["expected"], old.get("extracted_answer"),
                    record.get("extracted_answer"), str(record.get("meta", {}).get("category", "")))  # fmt: skip
        (fixed if record["correct"] else broken).append(flip)
    scorecards = (read_scorecard(before.summary), read_scorecard(after.summary))
    return Comparison(before, after, rows, fixed, broken, common, scorecards,
                      figure_changes(*scorecards))  # fmt: skip


def number(value: float | None, is_rate: bool) -> str:
    """A metric for a before/after table: a percentage for a rate."""
    if value is None:
        return "-"
    return pct(value) if is_rate else f"{value:.1f}"


def change(before: float | None, after: float | None, is_rate: bool) -> str:
    """After minus before: percentage points for a rate."""
    if before is None or after is None:
        return ""
    delta = after - before
    return f"{100 * delta:+.1f} pt" if is_rate else f"{delta:+.1f}"


def figure_change_text(change: FigureChange) -> str:
    """The change of a judging-mix figure with its standard error (points for a rate)."""
    delta, stderr = change.change, change.change_stderr
    if delta is None:
        return ""
    is_rate = next(f.is_rate for f in (change.before, change.after) if f is not None)
    scale, unit, digits = (100.0, " pt", 1) if is_rate else (1.0, "", 2)
    text = f"{scale * delta:+.{digits}f}{unit}"
    return text if stderr is None else f"{text} ± {scale * stderr:.{digits}f}{unit}"


def scorecard_comparison_lines(comparison: Comparison) -> list[str]:
    """The judging-mix figures before and after, and each side's notes."""
    if not comparison.figures:
        return []
    rows = [[f"{change.group}: {change.name}", figure_text(change.before),
             figure_text(change.after), figure_change_text(change)]
            for change in comparison.figures]  # fmt: skip
    header = ["judging-mix (± standard error)", comparison.before.name, comparison.after.name,
              "change"]  # fmt: skip
    lines = ["", *text_table(header, rows, "  ")]
    for side, card in zip(("before", "after"), comparison.scorecards, strict=True):
        lines += [f"  note ({side}): {note}" for note in (card.notes if card else ())]
    return lines


def format_comparison(comparison: Comparison, *, show: int = 20) -> str:
    before, after = comparison.before, comparison.after
    header = ("metric", before.name, after.name, "change")
    table = [header] + [
        (name, number(b, r), number(a, r), change(b, a, r)) for name, b, a, r in comparison.rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = [f"before: {before.path}", f"after:  {after.path}", ""]
    for row in table:
        lines.append(
            f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
        )
    b_errors, a_errors = accuracy_stderrs(before.summary), accuracy_stderrs(after.summary)
    for split in b_errors.keys() & a_errors.keys() if len(b_errors) > 1 else ("eval",):
        b_stderr, a_stderr = b_errors[split], a_errors[split]
        label = "answer accuracy" if split == "eval" else f"{split} answer accuracy"
        lines.append(f"  ({label} standard error: ± {pct(b_stderr)} before, ± {pct(a_stderr)} "
                     f"after; ± {pct(math.hypot(b_stderr, a_stderr))} on the change)")  # fmt: skip
    lines += scorecard_comparison_lines(comparison)
    lines.append("")
    lines.append(f"{comparison.common_items} item(s) in both: {len(comparison.fixed)} fixed "
                 f"(wrong -> correct), {len(comparison.broken)} broken (correct -> wrong)")  # fmt: skip
    for title, flips in (("fixed", comparison.fixed), ("broken", comparison.broken)):
        for flip in flips[:show]:
            lines.append(f"  {title:<6} {flip.id}  expected {flip.expected!r}: "
                         f"{flip.before!r} -> {flip.after!r}")  # fmt: skip
        if len(flips) > show:
            lines.append(f"  ... and {len(flips) - show} more {title}")
    return printable("\n".join(lines))


def _figure_change_record(change: FigureChange) -> dict[str, Any]:
    record: dict[str, Any] = {"group": change.group, "metric": change.name}
    for side, figure in (("before", change.before), ("after", change.after)):
        record[side] = figure.value if figure else None
        record[f"{side}_stderr"] = figure.stderr if figure else None
    return {**record, "change": change.change, "change_stderr": change.change_stderr}


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    """The comparison as plain data (``tunix compare --json``)."""
    return {
        "before": str(comparison.before.path),
        "after": str(comparison.after.path),
        "metrics": [
            {
                "metric": name,
                "before": b,
                "after": a,
                "change": None if b is None or a is None else a - b,
            }
            for name, b, a, _ in comparison.rows
        ],
        "answer_accuracy_stderr": {
            "before": accuracy_stderrs(comparison.before.summary),
            "after": accuracy_stderrs(comparison.after.summary),
        },
        "judging_mix": [_figure_change_record(change) for change in comparison.figures],
        "judging_mix_notes": {
            side: list(card.notes) if card else []
            for side, card in zip(("before", "after"), comparison.scorecards, strict=True)
        },
        "common_items": comparison.common_items,
        "fixed": [attrs.asdict(f) for f in comparison.fixed],
        "broken": [attrs.asdict(f) for f in comparison.broken],
    }
