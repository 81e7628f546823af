"""``tunix report``: one self-contained HTML page about a run.

The page needs nothing but itself: CSS is inline, charts are inline SVG drawn here from
``metrics.jsonl`` and the eval summaries, there are no external URLs and no JavaScript.
Every text taken from the run (completions above all) is HTML-escaped, and its control
characters are shown as escapes (``\\x00``). A partial run (no baseline, not trained yet)
gives a page whose empty sections say why they are empty.

:func:`gather` reads a run once into a :class:`RunReport`; :func:`render_html` draws it,
and ``tunix runs show`` prints the same facts (``tunix_eval.runs.format_run_details``).
The page holds no clock time of its own, so the same run always gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape as html_escape
from pathlib import Path
from typing import Any

import attrs

from tunix_core.errors import EvidenceError
from tunix_core.evaluation import headline_metrics
from tunix_core.evidence import sha256_file
from tunix_core.jsonio import read_jsonl, write_text_atomic
from tunix_core.layout import EVAL_SUMMARY
from tunix_core.rundir import RunDirectory
from tunix_core.types import BASELINE, EVALUATE, STAGE_NAMES
from tunix_eval import compare as comparing
from tunix_eval.judging_mix import Scorecard, read_scorecard
from tunix_eval.report import pct, printable, scorecard_tables

# (metric name, before, after, is_rate): a row of the before/after table.
Row = tuple[str, float | None, float | None, bool]

DEFAULT_SHOWN_FLIPS = 20
# A longer completion is cut on the page (the full text stays in predictions.jsonl).
MAX_COMPLETION_CHARS = 4000
# metrics.jsonl keys that are not curves: the x axis and the wall clock.
NOT_CURVES = frozenset({"step", "elapsed_seconds"})
BEFORE_COLOUR, AFTER_COLOUR = "#9aa5b1", "#2563eb"


def escape(text: str) -> str:
    """``text`` HTML-escaped, its control characters (NUL, ESC, ...) shown as escapes:
    HTML allows none of them but the whitespace ones."""
    return html_escape(printable(text, keep="\n\r\t"))


@attrs.frozen
class EvidenceFile:
    """A run file's checksum; ``sha256`` and ``size`` are ``None`` when it is missing."""

    name: str
    sha256: str | None
    size: int | None


@attrs.frozen
class RunReport:
    """What the report shows, read from the run directory once."""

    run: RunDirectory
    baseline: comparing.Evaluation | None
    final: comparing.Evaluation | None
    comparison: comparing.Comparison | None  # only when both evaluations exist
    metrics: list[dict[str, Any]]
    evidence: list[EvidenceFile]
    # The run's evaluations on other datasets (`tunix eval --run RUN --dataset NAME`).
    other_evaluations: list[comparing.Evaluation] = attrs.field(factory=list)

    @property
    def rows(self) -> list[Row]:
        """The before/after metrics (no per-group rows: those are the bar charts)."""
        if self.comparison is not None:
            names = {name for name, _ in (*comparing.METRIC_ROWS, *comparing.COUNT_ROWS)}
            splits = tuple(f"{split}: " for split in comparing.split_names(*self.summaries))
            return [row for row in self.comparison.rows
                    if row[0] in names or row[0].startswith(splits)]  # fmt: skip
        before = headline_metrics(self.baseline.summary if self.baseline else None)
        after = headline_metrics(self.final.summary if self.final else None)
        rows: list[Row] = [(name, before.get(name), after.get(name), True)
                           for name in ("answer_accuracy", "format_compliance")
                           if name in before or name in after]  # fmt: skip
        for split in comparing.split_names(*self.summaries):
            for metric in ("answer_accuracy", "format_compliance"):
                sides = [e.summary.get("splits", {}).get(split, {}).get(metric) if e else None
                         for e in (self.baseline, self.final)]  # fmt: skip
                rows.append((f"{split}: {metric}", sides[0], sides[1], True))
        return rows

    @property
    def summaries(self) -> list[dict[str, Any]]:
        """The summaries of the evaluations the run has (baseline, final)."""
        return [e.summary for e in (self.baseline, self.final) if e is not None]

    def scorecards(self) -> list[tuple[str, Scorecard]]:
        """(the summary's path in the run, its judging-mix scorecard) of each evaluation
        that has one: baseline, final, then the evaluations on other datasets."""
        found = []
        for evaluation in (self.baseline, self.final, *self.other_evaluations):
            scorecard = read_scorecard(evaluation.summary) if evaluation else None
            if evaluation is not None and scorecard is not None:
                where = (evaluation.path / EVAL_SUMMARY).relative_to(self.run.path)
                found.append((where.as_posix(), scorecard))
        return found

    def stage_note(self, stage: str) -> str:
        """``the <stage> stage is <status>``, to say why a section has no data."""
        record = self.run.manifest["stages"].get(stage, {})
        return f"the {stage} stage is {record.get('status', 'unknown')}"


def evidence_files(run: RunDirectory) -> list[EvidenceFile]:
    """sha256 and size of each evidence file of ``run``, in a fixed order."""
    paths = (run.manifest_path, run.config_path, run.summary_path, run.predictions_path,
             run.metrics_path, run.baseline_summary_path, run.baseline_predictions_path,
             run.model_config_path)  # fmt: skip
    files = []
    for path in paths:
        name = path.relative_to(run.path).as_posix()
        if path.is_file():
            files.append(EvidenceFile(name, sha256_file(path), path.stat().st_size))
        else:
            files.append(EvidenceFile(name, None, None))
    return files


def _evaluation(summary_path: Path) -> comparing.Evaluation | None:
    return comparing.load(summary_path.parent) if summary_path.is_file() else None


def gather(run_dir: Path) -> RunReport:
    """Read the run at ``run_dir``; unreadable evidence raises an error naming the file."""
    run = RunDirectory.open(run_dir)
    baseline = _evaluation(run.baseline_summary_path)
    final = _evaluation(run.summary_path)
    comparison = comparing.compare(baseline, final) if baseline and final else None
    try:
        metrics = read_jsonl(run.metrics_path) if run.metrics_path.is_file() else []
    except ValueError as exc:  # names the file and line
        raise EvidenceError(str(exc)) from None
    others = [comparing.load(path.parent)
              for path in sorted(run.evals_dir.glob(f"*/{EVAL_SUMMARY}"))]  # fmt: skip
    return RunReport(run, baseline, final, comparison, metrics, evidence_files(run), others)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _short(value: float) -> str:
    """An axis label: whole numbers from 1,000 up, else three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


# ---- charts (inline SVG) ----


def curves(metrics: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """``{key: [(step, value), ...]}`` for every numeric key of metrics.jsonl: the loss
    first, then reward curves, then the rest by name."""
    found: dict[str, list[tuple[float, float]]] = {}
    for record in metrics:
        step = record.get("step")
        if not isinstance(step, int):
            continue
        for key, value in record.items():
            if key in NOT_CURVES or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if math.isfinite(value):
                found.setdefault(key, []).append((float(step), float(value)))
    order = sorted(found, key=lambda k: (k != "loss", "reward" not in k, k))
    return {key: found[key] for key in order}


def _span(values: Sequence[float]) -> tuple[float, float]:
    low, high = min(values), max(values)
    if low == high:  # a flat line sits in the middle of the chart
        pad = abs(low) * 0.1 or 1.0
        return low - pad, high + pad
    pad = (high - low) * 0.05
    # A curve of non-negative values (tokens, learning rate) gets no negative axis.
    return (max(low - pad, 0.0) if low >= 0 else low - pad), high + pad


def line_chart(name: str, points: Sequence[tuple[float, float]]) -> str:
    width, height, left, right, top, bottom = 480, 200, 64, 12, 10, 34
    x0, x1 = _span([x for x, _ in points]) if len(points) == 1 else (points[0][0], points[-1][0])
    y0, y1 = _span([y for _, y in points])
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / ((x1 - x0) or 1.0) * plot_w

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * plot_h

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(name)} by step">']  # fmt: skip
    for i in range(5):
        value = y0 + (y1 - y0) * i / 4
        y = sy(value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{left - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_short(value)}</text>')  # fmt: skip
    first, last = points[0][0], points[-1][0]
    for x in sorted({first, last}):
        parts.append(f'<text x="{sx(x):.1f}" y="{height - 14}" text-anchor="middle">'
                     f"{_short(x)}</text>")  # fmt: skip
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 2}" '
                 'text-anchor="middle" class="axis">step</text>')  # fmt: skip
    coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    parts.append(f'<polyline points="{coords}" fill="none" stroke="{AFTER_COLOUR}" '
                 'stroke-width="2"/>')  # fmt: skip
    if len(points) <= 40:  # dots only where they can be told apart
        parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{AFTER_COLOUR}">'
                  f"<title>step {_short(x)}: {escape(name)} {_short(y)}</title></circle>"
                  for x, y in points]  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(groups: Sequence[tuple[str, float | None, float | None, int]]) -> str:
    """Grouped horizontal bars: per group (name, before, after, items), two bars."""
    label_w, bar_w, value_w, bar_h, gap = 180, 360, 64, 14, 12
    width = label_w + bar_w + value_w
    height = len(groups) * (2 * bar_h + gap) + gap
    parts = [f'<svg class="bars" viewBox="0 0 {width} {height}" role="img">']
    for index, (name, before, after, items) in enumerate(groups):
        top = gap + index * (2 * bar_h + gap)
        label = name if len(name) <= 24 else name[:23] + "…"
        parts.append(f'<text x="{label_w - 8}" y="{top + bar_h + 4}" text-anchor="end">'
                     f"<title>{escape(name)}</title>{escape(label)} "
                     f'<tspan class="axis">n={items}</tspan></text>')  # fmt: skip
        for offset, value, colour in ((0, before, BEFORE_COLOUR), (bar_h, after, AFTER_COLOUR)):
            y = top + offset
            length = 0.0 if value is None else max(value * bar_w, 1.0)
            parts.append(f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="{bar_h - 2}" '
                         'class="track"/>'
                         f'<rect x="{label_w}" y="{y}" width="{length:.1f}" '
                         f'height="{bar_h - 2}" fill="{colour}"/>'
                         f'<text x="{label_w + bar_w + 6}" y="{y + bar_h - 3}">'
                         f"{pct(value)}</text>")  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


# ---- sections ----


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], classes: str = "") -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _identity(report: RunReport) -> str:
    manifest = report.run.manifest
    environment = manifest.get("environment") or {}
    facts = [
        ("run id", manifest["run_id"]),
        ("model", manifest["model_id"]),
        ("model fingerprint", manifest.get("model_fingerprint") or "-"),
        ("dataset", manifest["dataset"]),
        ("trainer", manifest["trainer"]),
        ("status", manifest["status"] + (f": {manifest['error']}" if manifest.get("error") else "")),
        ("started", manifest["timestamp"]),
        ("finished", manifest.get("finished_at") or "-"),
        ("commit", manifest.get("commit_sha") or "-"),
        ("command", " ".join(manifest.get("command") or [])),
        ("accelerator", f"{environment.get('accelerator', '-')} "
                        f"× {environment.get('device_count', '-')}"),
    ]  # fmt: skip
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def stage_detail(detail: Mapping[str, Any]) -> str:
    """A stage's manifest detail as ``key value, ...`` (empty values left out)."""
    return ", ".join(f"{key} {f'{value:.4g}' if isinstance(value, float) else value}"
                     for key, value in detail.items() if value not in ("", None))  # fmt: skip


def stages_in_order(manifest: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The manifest's stage records in the order the stages run."""
    stages: dict[str, Any] = manifest["stages"]
    return [(name, stages[name]) for name in (*STAGE_NAMES, *sorted(set(stages) - set(STAGE_NAMES)))
            if name in stages]  # fmt: skip


def _stages(report: RunReport) -> str:
    stages = stages_in_order(report.run.manifest)
    rows = [(escape(name), f'<span class="status {escape(r["status"])}">{escape(r["status"])}</span>',
             duration(r.get("seconds")), escape(stage_detail(r.get("detail") or {})))
            for name, r in stages]  # fmt: skip
    total = sum(float(r.get("seconds") or 0.0) for _, r in stages)
    rows.append(("<b>total</b>", "", f"<b>{duration(total)}</b>", ""))
    return _table(("stage", "status", "time", "detail"), rows, "stages")


def _before_after(report: RunReport) -> str:
    if report.baseline is None and report.final is None:
        return _empty(f"No evaluation yet: {report.stage_note(BASELINE)} and "
                      f"{report.stage_note(EVALUATE)}.")  # fmt: skip
    rows = [(escape(name), comparing.number(b, r), comparing.number(a, r), comparing.change(b, a, r))
            for name, b, a, r in report.rows]  # fmt: skip
    before_items, after_items = (str(e.summary["counts"]["items"]) if e else "-"
                                 for e in (report.baseline, report.final))  # fmt: skip
    rows.append(("items", before_items, after_items, ""))
    for split in comparing.split_names(*report.summaries):
        before_items, after_items = (str(e.summary.get("splits", {}).get(split, {}).get("n", "-"))
                                     if e else "-" for e in (report.baseline, report.final))  # fmt: skip
        rows.append((f"{escape(split)}: items", before_items, after_items, ""))
    notes, errors = [], []
    for evaluation, stage, side in ((report.baseline, BASELINE, "before"),
                                    (report.final, EVALUATE, "after")):  # fmt: skip
        if evaluation is None:
            notes.append(f"No {side} column: {report.stage_note(stage)}.")
        else:
            split_errors = comparing.accuracy_stderrs(evaluation.summary)
            errors.append(f"± {pct(split_errors.pop('eval'))} {side}"
                          + "".join(f" (± {pct(e)} on {name})" for name, e in split_errors.items()))  # fmt: skip
    notes.append(f"Standard error of answer accuracy: {', '.join(errors)}.")
    table = _table(("metric", "before (baseline)", "after (final)", "change"), rows, "metrics")
    return table + "".join(f'<p class="note">{escape(note)}</p>' for note in notes)


def _curves(report: RunReport) -> str:
    found = curves(report.metrics)
    if not found:
        return _empty(f"No training metrics yet ({report.run.metrics_path.name} is empty or "
                      f"missing): {report.stage_note('train')}.")  # fmt: skip
    figures = [f"<figure><figcaption>{escape(key)}</figcaption>{line_chart(key, points)}</figure>"
               for key, points in found.items()]
    return f'<div class="curves">{"".join(figures)}</div>'


def _by_group(report: RunReport, key: str) -> str:
    summaries = [e.summary if e else None for e in (report.baseline, report.final)]
    tables = [s["scorecard"][f"by_{key}"] if s else {} for s in summaries]
    names = sorted(set(tables[0]) | set(tables[1]))
    if not names:
        return _empty(f"No evaluation yet: {report.stage_note(BASELINE)} and "
                      f"{report.stage_note(EVALUATE)}.")  # fmt: skip
    groups = [
        (name, *(t[name]["answer_accuracy"] if name in t else None for t in tables),
         max(int(t[name]["n"]) for t in tables if name in t))
        for name in names
    ]  # fmt: skip
    return bar_chart(groups)


def _scorecards(report: RunReport) -> str:
    """Each judging-mix scorecard of the run: per domain, with standard errors, and the
    notes that say what was not measured."""
    parts = []
    for where, scorecard in report.scorecards():
        parts.append(f"<h3><code>{escape(where)}</code></h3>")
        for title, header, rows in scorecard_tables(scorecard):
            cells = [[escape(cell) for cell in row] for row in rows]
            parts.append(f'<p class="note">{escape(title)}</p>'
                         + _table(header, cells, "metrics"))  # fmt: skip
        parts += [f'<p class="note">Note: {escape(note)}</p>' for note in scorecard.notes]
    return "".join(parts)


def _completion(text: str | None) -> str:
    if text is None:
        return '<pre class="missing">(no completion)</pre>'
    cut = len(text) - MAX_COMPLETION_CHARS
    shown = text if cut <= 0 else text[:MAX_COMPLETION_CHARS]
    more = f'<p class="note">… {cut:,} more characters in the predictions file</p>' if cut > 0 else ""
    return f"<pre>{escape(shown)}</pre>{more}"


def _flip_card(flip: comparing.Flip, before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    def side(title: str, answer: str | None, record: Mapping[str, Any] | None) -> str:
        verdict = "correct" if record and record.get("correct") else "wrong"
        return (f'<div class="side {verdict}"><h4>{title}: <span>{verdict}</span>, answer '
                f"<code>{escape(repr(answer))}</code></h4>"
                f"{_completion(record.get('completion') if record else None)}</div>")  # fmt: skip

    return (f'<article class="flip"><h3><code>{escape(flip.id)}</code> '
            f'<span class="axis">{escape(flip.category)}</span> expected '
            f"<code>{escape(flip.expected)}</code></h3>"
            f'<div class="sides">{side("before", flip.before, before.get(flip.id))}'
            f'{side("after", flip.after, after.get(flip.id))}</div></article>')  # fmt: skip


def _flips(report: RunReport, show: int) -> str:
    comparison = report.comparison
    if comparison is None:
        missing = [report.stage_note(stage) for stage, evaluation
                   in ((BASELINE, report.baseline), (EVALUATE, report.final))
                   if evaluation is None]  # fmt: skip
        return _empty("Flips need the baseline and the final evaluation: "
                      + " and ".join(missing) + ".")  # fmt: skip
    before = {p["id"]: p for p in comparison.before.predictions}
    after = {p["id"]: p for p in comparison.after.predictions}
    parts = [f'<p class="note">{comparison.common_items} item(s) in both evaluations: '
             f"{len(comparison.fixed)} fixed (wrong → right), {len(comparison.broken)} broken "
             "(right → wrong).</p>"]  # fmt: skip
    for kind, title, flips in (("fixed", "Fixed: wrong → right", comparison.fixed),
                               ("broken", "Broken: right → wrong", comparison.broken)):  # fmt: skip
        parts.append(f'<h3 class="kind {kind}">{title} ({len(flips)})</h3>')
        if not flips:
            parts.append(_empty("None."))
        parts += [_flip_card(flip, before, after) for flip in flips[:show]]
        if len(flips) > show:
            parts.append(_empty(f"… and {len(flips) - show} more (tunix compare lists them all)."))
    return f'<div id="flips">{"".join(parts)}</div>'


def _evidence(report: RunReport) -> str:
    rows = [(f"<code>{escape(f.name)}</code>",
             f"<code>{f.sha256}</code>" if f.sha256 else '<span class="empty">missing</span>',
             "-" if f.size is None else f"{f.size:,}")
            for f in report.evidence]  # fmt: skip
    note = ('<p class="note">As the files were when this report was written; the manifest '
            "changes at every stage, so re-run <code>tunix report</code> after the run "
            "ends.</p>")  # fmt: skip
    return _table(("file", "sha256", "bytes"), rows, "evidence") + note


STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;
background:#f5f7fa;margin:0}
main{max-width:1080px;margin:0 auto;padding:24px 32px 48px}
header{border-bottom:3px solid #2563eb;margin-bottom:8px}
h1{font-size:24px;margin:0 0 4px}h1 small{font-weight:400;color:#52606d;font-size:15px}
h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid #d9e2ec;padding-bottom:4px}
h3{font-size:15px;margin:16px 0 8px}h4{font-size:13px;margin:0 0 6px;font-weight:600}
section{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:4px 20px 16px;
margin:16px 0}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{background:#f0f4f8;font-weight:600}
table.metrics td:not(:first-child),table.metrics th:not(:first-child){text-align:right}
table.evidence code{font-size:12px;word-break:break-all}
dl.facts{display:grid;grid-template-columns:160px 1fr;gap:4px 16px;margin:8px 0}
dt{color:#52606d}dd{margin:0;word-break:break-word}
.status{padding:1px 8px;border-radius:10px;background:#e4e7eb;font-size:13px}
.status.done,.status.succeeded{background:#d1fae5;color:#065f46}
.status.failed{background:#fee2e2;color:#991b1b}
.status.running{background:#fef3c7;color:#92400e}
.empty{color:#7b8794;font-style:italic}.note{color:#52606d;font-size:13px;margin:6px 0}
.legend span{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 4px 0 12px;
vertical-align:-1px}
.curves{display:grid;grid-template-columns:1fr 1fr;gap:16px 24px}figure{margin:0}
figcaption{font-weight:600;font-size:13px}
svg{width:100%;height:auto;font-size:11px;fill:#3e4c59}
svg .grid{stroke:#e4e7eb}svg .track{fill:#f0f4f8}svg .axis{fill:#7b8794}
svg.bars{max-width:700px}
.flip{border:1px solid #e4e7eb;border-radius:6px;padding:8px 12px;margin:10px 0}
.flip h3{margin:2px 0 8px}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.side{border-left:4px solid #9aa5b1;padding-left:8px;min-width:0}
.side.correct{border-color:#16a34a}.side.correct h4 span{color:#15803d}
.side.wrong{border-color:#dc2626}.side.wrong h4 span{color:#b91c1c}
pre{white-space:pre-wrap;word-break:break-word;background:#f8fafc;border:1px solid #e4e7eb;
border-radius:4px;padding:6px 8px;margin:0;font-size:12px;max-height:320px;overflow:auto}
h3.kind.fixed{color:#15803d}h3.kind.broken{color:#b91c1c}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
"""


def render_html(report: RunReport, *, show: int = DEFAULT_SHOWN_FLIPS) -> str:
    """The whole page; ``show`` flipped items of each kind get their completions."""
    manifest = report.run.manifest
    legend = (f'<p class="legend"><span style="background:{BEFORE_COLOUR}"></span>before '
              f'(baseline)<span style="background:{AFTER_COLOUR}"></span>after (final)</p>')  # fmt: skip
    sections = [
        ("run", "Run", _identity(report)),
        ("stages", "Stages", _stages(report)),
        ("before-after", "Before and after", _before_after(report)),
        ("curves", "Training curves", _curves(report)),
        ("by-category", "Answer accuracy by category", legend + _by_group(report, "category")),
        ("by-difficulty", "Answer accuracy by difficulty",
         legend + _by_group(report, "difficulty")),
        *([("judging-mix", "Judging-mix by domain", _scorecards(report))]
          if report.scorecards() else []),
        ("flipped", "Items that flipped", _flips(report, show)),
        ("evidence", "Evidence checksums", _evidence(report)),
    ]  # fmt: skip
    body = "".join(f'<section id="{anchor}"><h2>{title}</h2>{content}</section>'
                   for anchor, title, content in sections)  # fmt: skip
    title = f"tunix run {manifest['run_id']}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body><main>"
        f"<header><h1>{escape(manifest['run_id'])} <small>{escape(manifest['model_id'])} on "
        f"{escape(manifest['dataset'])}, trainer {escape(manifest['trainer'])}, "
        f"{escape(manifest['status'])}</small></h1></header>{body}</main></body></html>\n"
    )


def write_report(run_dir: Path, out: Path | None = None, *, show: int = DEFAULT_SHOWN_FLIPS) -> Path:
    """Write the report of the run at ``run_dir`` to ``out`` (default: the run's
    ``report.html``). Returns the path written."""
    report = gather(run_dir)
    target = out if out is not None else report.run.report_path
    write_text_atomic(target, render_html(report, show=show))
    return target
