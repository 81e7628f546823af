"""Before/after comparison of two evaluations: metric deltas and the items that flipped.

An evaluation is a folder holding ``eval_summary.json`` and ``predictions.jsonl``: a run
directory (its final evaluation), its ``baseline/`` folder, or a ``tunix eval --out``
folder. A run directory alone compares its baseline with its final evaluation. A run that
also evaluated its dataset's ood split reports it under ``splits`` in its summary; its
rows (``ood: answer_accuracy``, ...) and standard errors come right after the eval split's.
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
from tunix_eval.report import pct, printable

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
class Comparison:
    before: Evaluation
    after: Evaluation
    rows: list[tuple[str, float | None, float | None, bool]]  # name, before, after, is_rate
    fixed: list[Flip]  # wrong before, correct after
    broken: list[Flip]  # correct before, wrong after
    common_items: int


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
    return Comparison(before, after, rows, fixed, broken, common)


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
        "common_items": comparison.common_items,
        "fixed": [attrs.asdict(f) for f in comparison.fixed],
        "broken": [attrs.asdict(f) for f in comparison.broken],
    }
