"""``tunix runs list``: the runs under a folder, best primary score first; ``tunix runs
show``: one run in detail."""

from __future__ import annotations

import json
from pathlib import Path

import attrs

from tunix_core.errors import TunixError
from tunix_core.evaluation import read_summary
from tunix_core.layout import EVAL_SUMMARY, REPORT, RunLayout
from tunix_core.rundir import RunDirectory
from tunix_core.types import TrainDetail
from tunix_eval.compare import accuracy_stderrs, change, number
from tunix_eval.report import pct, printable, scorecard_lines
from tunix_eval.report_html import RunReport, duration, stage_detail, stages_in_order


@attrs.frozen
class RunRow:
    run_id: str
    path: Path
    status: str
    dataset: str
    model_id: str
    steps: int | None
    baseline_score: float | None
    primary_score: float | None
    format_compliance: float | None
    problem: str = ""
    sweep: str = ""  # the sweep this run is a trial of, from its sweep_trial.json marker
    trial: int | None = None


def _sweep_trial(path: Path) -> tuple[str, int | None]:
    """The sweep id and trial number a sweep marked the run with, or ("", None)."""
    try:
        marker = json.loads(RunLayout(path).sweep_trial_path.read_text(encoding="utf-8"))
        return str(marker["sweep"]), int(marker["trial"])
    except (OSError, ValueError, KeyError, TypeError):  # no marker, or not one we wrote
        return "", None


def _scores(folder: Path) -> tuple[float | None, float | None]:
    summary = read_summary(folder / EVAL_SUMMARY)
    if summary is None:
        return None, None
    return summary["primary_score"], summary["scorecard"]["overall"]["format_compliance"]


def read_run(path: Path) -> RunRow:
    """One row; an unreadable run becomes a row with ``status`` ``unreadable``."""
    try:
        run = RunDirectory.open(path)
        baseline, _ = _scores(run.baseline_dir)
        primary, compliance = _scores(run.path)
    except TunixError as exc:
        return RunRow(path.name, path, "unreadable", "", "", None, None, None, None, str(exc))
    manifest = run.manifest
    steps = TrainDetail.read(manifest).steps
    sweep, trial = _sweep_trial(path)
    return RunRow(
        run_id=run.run_id, path=path, status=manifest["status"], dataset=manifest["dataset"],
        model_id=manifest["model_id"], steps=steps if isinstance(steps, int) else None,
        baseline_score=baseline, primary_score=primary, format_compliance=compliance,
        sweep=sweep, trial=trial,
    )  # fmt: skip


def list_runs(root: Path) -> list[RunRow]:
    """Every run directory directly under ``root``: runs outside sweeps first, then each
    sweep's trials together (by sweep id); within each group scored runs by primary score
    (best first), then unscored ones, by run id."""
    if not root.is_dir():
        raise TunixError(f"{root}: no such folder")
    rows = [read_run(p) for p in sorted(root.iterdir()) if RunLayout(p).manifest_path.is_file()]
    return sorted(rows, key=lambda r: (
        r.sweep, r.primary_score is None, -(r.primary_score or 0.0), r.run_id
    ))  # fmt: skip


def format_runs(rows: list[RunRow]) -> str:
    header: tuple[str, ...] = (
        "#", "run", "status", "score", "baseline", "format", "dataset", "model", "steps"
    )  # fmt: skip
    in_sweeps = any(row.sweep for row in rows)
    if in_sweeps:
        header = (*header, "sweep")
    table = [header]
    rank = 0
    for index, row in enumerate(rows):
        if index == 0 or row.sweep != rows[index - 1].sweep:
            rank = 0  # each sweep is ranked on its own
        rank += 1
        sweep_cell = (f"{row.sweep} #{row.trial}" if row.sweep else "-",) if in_sweeps else ()
        table.append((
            str(rank) if row.primary_score is not None else "-", row.run_id, row.status,
            pct(row.primary_score), pct(row.baseline_score), pct(row.format_compliance),
            row.dataset, row.model_id, "-" if row.steps is None else str(row.steps), *sweep_cell,
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table
    ]
    lines += [f"  {row.run_id}: {row.problem}" for row in rows if row.problem]
    return "\n".join(lines)


def report_locations(report: RunReport) -> list[Path]:
    """The report files the run has: ``tunix report``'s and the package stage's."""
    run = report.run
    return [path for path in (run.report_path, run.submission_dir / REPORT) if path.is_file()]


def format_run_details(report: RunReport) -> str:
    """``tunix runs show``: the facts of the HTML report, as text."""
    run, manifest = report.run, report.run.manifest
    lines = [
        f"run       {manifest['run_id']}  ({run.path})",
        f"model     {manifest['model_id']}",
        f"dataset   {manifest['dataset']}",
        f"trainer   {manifest['trainer']}",
        f"status    {manifest['status']}" + (f": {manifest['error']}" if manifest.get("error") else ""),
        "",
        "stages:",
    ]  # fmt: skip
    for name, record in stages_in_order(manifest):
        detail = stage_detail(record.get("detail") or {})
        lines.append(f"  {name:<9} {record['status']:<8} {duration(record.get('seconds')):>12}"
                     + (f"  {detail}" if detail else ""))  # fmt: skip
    lines.append("")
    rows = report.rows
    if rows:
        table = [("metric", "baseline", "final", "change")]
        table += [(name, number(b, r), number(a, r), change(b, a, r)) for name, b, a, r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        lines += [f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}"
                  .rstrip() for row in table]  # fmt: skip
        for evaluation, side in ((report.baseline, "baseline"), (report.final, "final")):
            if evaluation is not None:
                errors = accuracy_stderrs(evaluation.summary)
                lines.append(f"  answer accuracy standard error ({side}): "
                             + ", ".join(f"{split} ± {pct(e)}" for split, e in errors.items()))  # fmt: skip
    else:
        lines.append(f"no evaluation yet: {report.stage_note('baseline')} and "
                     f"{report.stage_note('evaluate')}")  # fmt: skip
    comparison = report.comparison
    if comparison is not None:
        lines.append(f"flips: {len(comparison.fixed)} fixed (wrong -> right), "
                     f"{len(comparison.broken)} broken (right -> wrong) of "
                     f"{comparison.common_items} item(s); `tunix compare {run.path}` lists them")  # fmt: skip
    for where, scorecard in report.scorecards():
        lines += ["", f"judging-mix in {where}:"]
        lines += printable("\n".join(scorecard_lines(scorecard))).split("\n")
    lines.append("")
    locations = report_locations(report)
    if locations:
        lines += [f"report    {path}" for path in locations]
    else:
        lines.append(f"report    none yet; write it with `tunix report {run.path}`")
    return "\n".join(lines)
