"""README_SUBMISSION.md, generated only from what the run wrote (never typed by hand)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import attrs

from tunix_core.layout import CONFIG, LOG, MODEL, MODEL_CONFIG


@attrs.frozen
class ReadmeFacts:
    """Everything the README states, each taken from a file of the run."""

    manifest: Mapping[str, Any]
    model_config: Mapping[str, Any]
    summary: Mapping[str, Any]
    baseline_summary: Mapping[str, Any] | None
    steps: int | None
    final_loss: float | None
    round_trip: Mapping[str, Any]
    notebook_included: bool
    notebook_note: str
    log_truncated: bool
    log_bytes: int
    sample_count: int
    prediction_count: int
    entries: Mapping[str, int]


def headline_numbers(summary: Mapping[str, Any] | None) -> dict[str, float]:
    """The score, the format compliance, the item count and every numeric evaluator metric
    of an ``eval_summary.json`` (evaluator metrics as ``evaluator.metric``)."""
    if not summary:
        return {}
    numbers: dict[str, float] = {}
    overall = (summary.get("scorecard") or {}).get("overall") or {}
    candidates = {
        "primary_score": summary.get("primary_score"),
        "format_compliance": overall.get("format_compliance"),
        "items": (summary.get("counts") or {}).get("items"),
    }
    for name, metrics in sorted((summary.get("evaluators") or {}).items()):
        for key, value in sorted((metrics or {}).items()):
            candidates[f"{name}.{key}"] = value
    for key, value in candidates.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            numbers[key] = value
    return numbers


@attrs.frozen
class SplitScore:
    """One evaluated split's answer accuracy (with its standard error) and format."""

    items: int | None
    accuracy: float | None
    accuracy_stderr: float | None
    format_compliance: float | None


def split_scores(summary: Mapping[str, Any] | None) -> dict[str, SplitScore]:
    """Every split an ``eval_summary.json`` scored: its own split first (``source.split``),
    then those under ``splits`` (``ood``), in their order."""
    if not summary:
        return {}
    accuracy = (summary.get("evaluators") or {}).get("accuracy") or {}
    overall = (summary.get("scorecard") or {}).get("overall") or {}
    own = (summary.get("source") or {}).get("split") or "eval"
    scores = {own: SplitScore((summary.get("counts") or {}).get("items"),
                              accuracy.get("answer_accuracy"),
                              accuracy.get("answer_accuracy_stderr"),
                              overall.get("format_compliance"))}  # fmt: skip
    for name, split in (summary.get("splits") or {}).items():
        scores[name] = SplitScore(split.get("n"), split.get("answer_accuracy"),
                                  split.get("answer_accuracy_stderr"),
                                  split.get("format_compliance"))  # fmt: skip
    return scores


def _with_error(value: float | None, stderr: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1%}" + (f" ± {stderr:.1%}" if stderr is not None else "")


def _split_lines(summary: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    """A table of every evaluated split, before and after, when there is more than one."""
    after, before = split_scores(summary), split_scores(baseline)
    if len(after) < 2:
        return []
    empty = SplitScore(None, None, None, None)
    lines = ["Every evaluated split (answer accuracy with its standard error; `ood` asks the",
             "same skills in wordings and number ranges training never used):", "",
             "| split | items | answer accuracy before | after | format compliance before | after |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, score in after.items():
        old = before.get(name, empty)
        lines.append(f"| {name} | {_number(score.items)} | "
                     f"{_with_error(old.accuracy, old.accuracy_stderr)} | "
                     f"{_with_error(score.accuracy, score.accuracy_stderr)} | "
                     f"{_with_error(old.format_compliance, None)} | "
                     f"{_with_error(score.format_compliance, None)} |")  # fmt: skip
    return [*lines, ""]


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return str(value) if isinstance(value, int) else f"{value:.4f}"


def _round_trip_line(record: Mapping[str, Any]) -> str:
    verdict = "passed" if record.get("ok") else "FAILED"
    return (
        f"{record.get('loader')}: {verdict} (max |Δ logit| {record.get('max_abs_diff'):.3g} "
        f"≤ {record.get('tolerance'):.3g}, argmax match {record.get('argmax_match')}, "
        f"tokenizer match {record.get('tokens_match')}, fingerprint match "
        f"{record.get('fingerprint_match')}, {record.get('logits_compared')} logits compared)"
    )


def render_readme(facts: ReadmeFacts) -> str:
    manifest, model = facts.manifest, facts.model_config
    env = manifest.get("environment") or {}
    lines = [
        f"# Submission: {manifest['run_id']}",
        "",
        "Generated by `tunix package` from the run directory; every number below is copied",
        "from the run's evidence files in this bundle (see `MANIFEST` for their sha256).",
        "",
        "## Model",
        "",
        f"- model id: `{manifest.get('model_id')}` (preset `{model.get('preset')}`, family "
        f"`{model.get('family')}`, source weights `{model.get('weights')}`)",
        f"- parameters: {model.get('num_params'):,} ({model.get('dtype')})",
        f"- fingerprint: `{model.get('fingerprint')}`",
        "- export: `model/` beside this zip: Orbax params in the upstream layout of Google's "
        "Flax Gemma checkpoints (`model/params`), `model/tokenizer.model`, "
        f"`{MODEL}/{MODEL_CONFIG}`, `model/probe.json`",
    ]
    files = model.get("files") or {}
    if "hf" in files:
        lines[-1] += ", the same weights for Hugging Face transformers (`model/hf`)"
    if "adapters" in files:
        lines[-1] += ", the LoRA adapters on their own (`model/adapters`)"
    compat = facts.round_trip.get("google_tunix")
    if isinstance(compat, Mapping):
        lines.append(f"- round trip, {_round_trip_line(compat)}")
    else:
        lines.append(f"- round trip through google-tunix: not run; {compat}")
    ours = facts.round_trip.get("tunix_jax")
    if isinstance(ours, Mapping):
        lines.append(f"- round trip, {_round_trip_line(ours)}")
    code = (model.get("google_tunix") or {}).get("code")
    if code:
        lines += ["", "Load it with google-tunix, from the folder that holds `model/`:", "",
                  "```python", *code, "```"]  # fmt: skip
    lines += [
        "",
        "## Data and training",
        "",
        f"- dataset: `{manifest.get('dataset')}`",
        f"- trainer: `{manifest.get('trainer')}`",
        f"- steps: {facts.steps if facts.steps is not None else '—'}",
        f"- final training loss: {_number(facts.final_loss)}",
        "",
        "## Scores",
        "",
    ]
    before, after = headline_numbers(facts.baseline_summary), headline_numbers(facts.summary)
    if facts.baseline_summary is None:
        lines.append("No baseline was measured (eval.baseline was off), so there is no 'before'.")
        lines.append("")
    lines += _split_lines(facts.summary, facts.baseline_summary)
    lines += ["| metric | before | after |", "|---|---|---|"]
    for key in [*after, *(k for k in before if k not in after)]:
        lines.append(f"| {key} | {_number(before.get(key))} | {_number(after.get(key))} |")
    lines += [
        "",
        f"Predictions: {facts.sample_count} of {facts.prediction_count} (first by id) are in "
        "`predictions_sample.jsonl`.",
        "",
        "## Reproduce",
        "",
        "```",
        shlex.join(manifest.get("command") or []),
        "```",
        "",
        f"- commit: `{manifest.get('commit_sha') or 'not in a git checkout'}`",
        f"- config file given: `{manifest.get('config_path')}`; the resolved config is "
        f"`{CONFIG}` in this bundle",
        f"- started: {manifest.get('timestamp')}",
        f"- environment: Python {env.get('python')}, {env.get('platform')}, "
        f"{env.get('accelerator')} x{env.get('device_count')}",
    ]
    packages = env.get("packages") or {}
    if packages:
        versions = ", ".join(
            f"{name} {version}" for name, version in sorted(packages.items()) if version
        )
        lines.append(f"- packages: {versions}")
    lines += ["", "## Files", ""]
    for name, size in sorted(facts.entries.items()):
        lines.append(f"- `{name}` ({size:,} bytes)")
    lines.append("- `MANIFEST`: sha256 and size of every file above and of `model/`")
    if facts.log_truncated:
        lines.append(f"- `{LOG}` was cut to fit the size cap (the full log had {facts.log_bytes:,} "
                     "bytes); a marker line shows where")  # fmt: skip
    lines += ["", "## Notebook", ""]
    if facts.notebook_included:
        lines.append(f"`notebooks/kaggle_submission.ipynb` is included ({facts.notebook_note}).")
    else:
        lines.append(f"No notebook is included: {facts.notebook_note}.")
    return "\n".join(lines) + "\n"
