"""The ``tunix eval``, ``tunix compare``, ``tunix runs`` and ``tunix report`` commands.

Importing this module is cheap: models are loaded through the backend registry inside
the command bodies, so JAX is imported only by ``--run`` and ``--model``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import click

from tunix_core.config import RunConfig, apply_overrides, load_run_config, structure_config
from tunix_core.data.loading import load_split
from tunix_core.data.mixture import load_dataset_split
from tunix_core.data.record import ReasoningExample, read_jsonl
from tunix_core.errors import ConfigError, DataError, TunixError
from tunix_core.evaluation import (
    ANSWER_MATCH_FIELD,
    answer_checks_of,
    evaluate_examples,
    score_predictions,
)
from tunix_core.jsonio import read_user_jsonl
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS, REPORT, RunLayout, model_id
from tunix_core.plugins import PluginHost
from tunix_core.protocols import AnswerCheckRegistry, Evaluator, ModelSpec, Prediction, RunContext
from tunix_core.registry import UnknownNameError
from tunix_core.rundir import RunDirectory, run_lock
from tunix_core.stages import run_eval_source
from tunix_eval import compare as comparing
from tunix_eval import report_html
from tunix_eval.judge import JudgeEvaluator, JudgeOptions
from tunix_eval.judging_mix import JudgingMixEvaluator
from tunix_eval.report import format_summary
from tunix_eval.runs import format_run_details, format_runs, list_runs

# Datasets evaluated with their own evaluators and parameter type unless the command line
# names others: the judging-mix suite is scored per domain, in the graders' bfloat16.
DATASET_EVALUATORS = {"judging-mix": ("format", "accuracy", "judging-mix")}
DATASET_DTYPES = {"judging-mix": "bfloat16"}


def _host(ctx: click.Context) -> PluginHost:
    host: PluginHost = ctx.find_root().obj
    return host


def _load_evaluators(
    host: PluginHost, names: Sequence[str], judge: JudgeOptions | None
) -> list[Evaluator]:
    evaluators: list[Evaluator] = []
    # One judge for both: the judging-mix scorecard's rubric scores are the judge's own.
    judge_evaluator = JudgeEvaluator(judge) if judge is not None else None
    for name in names:
        if name == "judge" and judge is not None:
            continue  # added below with the command line's options
        if name == JudgingMixEvaluator.name:  # it scores open items by their rubric
            evaluators.append(JudgingMixEvaluator(judge=judge_evaluator))
            continue
        try:
            evaluators.append(host.evaluators.load(name)())
        except UnknownNameError as exc:
            raise ConfigError(f"--evaluator: {exc}") from None
    if judge_evaluator is not None:
        evaluators.append(judge_evaluator)
    return evaluators


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a run directory (it holds a run manifest)."""
    return RunLayout(path).manifest_path.is_file()


def _field_error(path: Path, line: int, field: str, problem: str) -> DataError:
    return DataError(f"{path}:{line}: field '{field}': {problem}")


def read_completions(path: Path, answer_checks: AnswerCheckRegistry) -> list[Prediction]:
    """Completions to score: JSON Lines with ``id``, ``completion``, ``expected`` and
    optional ``prompt`` and ``meta`` (whose ``answer_match`` must name one of
    ``answer_checks``). Errors name the file, line and field."""
    predictions: list[Prediction] = []
    seen: dict[str, int] = {}
    for number, record in read_user_jsonl(path):
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        for field in ("id", "completion", "expected"):
            if field not in record:
                raise _field_error(path, number, field, "is required")
        item_id, expected = record["id"], record["expected"]
        if not isinstance(item_id, str) or not item_id.strip():
            raise _field_error(path, number, "id", "must be a non-empty string")
        if item_id in seen:
            raise _field_error(
                path, number, "id", f"{item_id!r} already used on line {seen[item_id]}"
            )
        seen[item_id] = number
        if not isinstance(record["completion"], str):
            raise _field_error(path, number, "completion", "must be a string")
        if isinstance(expected, bool) or not isinstance(expected, str | int | float):
            raise _field_error(path, number, "expected", "must be a string or a number")
        if isinstance(expected, float) and not math.isfinite(expected):
            raise _field_error(path, number, "expected", "must be a finite number")
        prompt = record.get("prompt", "")
        if not isinstance(prompt, str):
            raise _field_error(path, number, "prompt", "must be a string")
        meta = record.get("meta", {})
        if not isinstance(meta, dict):
            raise _field_error(path, number, "meta", "must be an object")
        for key, value in meta.items():
            if value is not None and not isinstance(value, str | int | float | bool):
                raise _field_error(path, number, f"meta.{key}", "must be a string, number or null")
        check = meta.get(ANSWER_MATCH_FIELD)
        if check is not None and (not isinstance(check, str) or check not in answer_checks):
            problem = (answer_checks.unknown_message(check) if isinstance(check, str)
                       else "must be the name of an answer check")  # fmt: skip
            raise _field_error(path, number, f"meta.{ANSWER_MATCH_FIELD}", problem)
        predictions.append(Prediction(item_id, prompt, record["completion"], str(expected), meta))
    if not predictions:
        raise DataError(f"{path}: no completions in the file")
    return predictions


@attrs.frozen
class _Target:
    """What ``tunix eval --run`` or ``--model`` generates for, and where it writes."""

    config: RunConfig
    run: RunDirectory | None
    examples: list[ReasoningExample]
    out: Path
    label: str
    source: dict[str, Any]


def _run_target(host: PluginHost, run_dir: Path, out: Path | None, limit: int | None,
                dataset: str | None = None, split: str = "eval") -> _Target:  # fmt: skip
    """A run's trained model on the run's own eval items (cut to its ``eval.limit``), or
    on ``split`` of another ``dataset`` (written to ``evals/NAME`` in the run)."""
    run = RunDirectory.open(run_dir)
    config = load_run_config(run.config_path)
    if not run.model_dir.exists():
        raise TunixError(f"{run_dir}: the run has no trained model yet ({run.model_dir}); "
                         f"finish training with `tunix run --resume {run_dir}`")  # fmt: skip
    if dataset is not None:
        name = dataset.replace(":", "_").replace("/", "_")
        examples = load_split(host.datasets, dataset, split, seed=config.dataset.seed,
                              options={}, limit=limit, transforms=host.transforms)  # fmt: skip
        source = {"run": run.run_id, "model_id": run.manifest["model_id"],
                  "model_fingerprint": run.manifest.get("model_fingerprint"),
                  "dataset": dataset, "split": split}  # fmt: skip
        return _Target(config, run, examples, out or run.evals_dir / name,
                       f"final on {dataset}", source)  # fmt: skip
    saved = run.eval_data_path
    data = config.dataset
    examples = (
        read_jsonl(saved) if saved.is_file()  # exactly the items the run evaluated
        else load_dataset_split(host.datasets, data, "eval", limit=data.eval_limit,
                                transforms=host.transforms).examples
    )  # fmt: skip
    limit = limit or config.eval.limit
    source = run_eval_source(run, data.label)
    return _Target(config, run, examples[:limit] if limit else examples, out or run.path,
                   "final", source)  # fmt: skip


def _model_target(host: PluginHost, preset: str, weights: str, backend: str, dataset: str,
                  split: str, overrides: Sequence[str], out: Path, limit: int | None) -> _Target:  # fmt: skip
    """An untrained model on a dataset split."""
    data: dict[str, Any] = {"dataset": {"name": dataset},
                            "model": {"preset": preset, "weights": weights, "backend": backend}}  # fmt: skip
    config = structure_config(apply_overrides(data, overrides), source="tunix eval options")
    section = config.dataset
    examples = load_split(host.datasets, section.name, split, seed=section.seed,
                          options=section.options, limit=limit, transforms=host.transforms)  # fmt: skip
    evaluated = model_id(config.model.preset, config.model.weights)  # --set may change either
    source = {"model_id": evaluated, "dataset": section.name, "split": split}
    return _Target(config, None, examples, out, evaluated, source)


@click.command("eval")
@click.option(
    "--run",
    "run_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A run directory: re-generate with its trained model (through its backend).",
)
@click.option("--model", "preset", help="A model preset to evaluate untrained, e.g. gemma3-270m.")
@click.option(
    "--weights",
    default="default",
    show_default=True,
    help="With --model: default | random | gguf:PATH | safetensors:DIR | orbax:DIR.",
)
@click.option(
    "--backend",
    default="jax",
    show_default=True,
    help="With --model: the model backend plugin that loads the model.",
)
@click.option(
    "--dataset",
    help="Dataset name or NAME:ARG: with --model, required; with --run, evaluate the run's "
    "model on it (e.g. judging-mix) instead of the run's own eval items.",
)
@click.option(
    "--split", default="eval", show_default=True, help="With --dataset: the split to evaluate."
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16"]),
    help="Parameter type while evaluating. Default: eval.dtype, else model.dtype "
    "(judging-mix: bfloat16, as the graders load it).",
)
@click.option(
    "--predictions",
    "predictions_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Score existing completions (JSONL: id, completion, expected[, prompt, meta]).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder (default with --run: the run directory).",
)
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N items.")
@click.option(
    "--evaluator",
    "evaluator_names",
    multiple=True,
    help="Evaluator to use (repeat); default: the config's eval.evaluators.",
)
@click.option("--judge-model", help="Add the LLM judge with this model preset, e.g. gemma3-1b-it.")
@click.option(
    "--judge-weights", default="default", show_default=True, help="Weights of the judge model."
)
@click.option(
    "--judge-backend",
    default="jax",
    show_default=True,
    help="Model backend plugin that loads the judge model.",
)
@click.option("--max-new-tokens", type=click.IntRange(min=1), help="Default: eval.max_new_tokens.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Default: eval.batch_size.")
@click.option("--label", help="Name of this evaluation in its summary.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --model: override a config field, e.g. --set model.dtype=bfloat16.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Discard completions already in the output folder; replace an evaluation there "
    "of another source.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def eval_command(ctx: click.Context, /, **options: Any) -> None:
    """Evaluate a run's trained model, an untrained model, or a file of completions.

    \b
      tunix eval --run runs/ID
      tunix eval --model gemma3-270m --dataset dev-reasoning-v2 --limit 20 --out evals/base
      tunix eval --predictions completions.jsonl --out evals/mine
    """
    request = EvalRequest(**options)
    request.check()
    host = _host(ctx)
    checks = answer_checks_of(host)
    if request.predictions_file is not None:
        summary, out = _score_completions(host, request, checks)
    else:
        summary, out = _generate_and_score(host, request, checks)
    if request.as_json:
        click.echo(json.dumps(summary, indent=2, sort_keys=True))
    else:
        click.echo(format_summary(summary))
        click.echo(f"  written to {out}")


@attrs.frozen
class EvalRequest:
    """The options of ``tunix eval``, named as its parameters."""

    # What to evaluate: exactly one of run_dir, preset (with dataset) and predictions_file.
    run_dir: Path | None
    preset: str | None
    weights: str
    backend: str
    dataset: str | None
    split: str
    dtype: str | None
    overrides: tuple[str, ...]
    predictions_file: Path | None
    # How to score it.
    evaluator_names: tuple[str, ...]
    judge_model: str | None
    judge_weights: str
    judge_backend: str
    label: str | None
    # How to generate, and where the results go.
    limit: int | None
    max_new_tokens: int | None
    batch_size: int | None
    out: Path | None
    fresh: bool
    as_json: bool

    def check(self) -> None:
        """The combinations click cannot express."""
        modes = [m for m, v in (("--run", self.run_dir), ("--model", self.preset),
                                ("--predictions", self.predictions_file)) if v is not None]  # fmt: skip
        if len(modes) != 1:
            raise click.UsageError("give exactly one of --run, --model and --predictions")
        if self.predictions_file is not None and (self.dataset or self.dtype):
            raise click.UsageError("--dataset and --dtype go with --model or --run")
        if self.preset is None and self.overrides:
            raise click.UsageError("--set goes with --model")
        if self.preset is not None and not self.dataset:
            raise click.UsageError("--model needs --dataset")
        if self.out is None and self.run_dir is None:
            raise click.UsageError(f"{modes[0]} needs --out DIR")
        if self.predictions_file is not None and self.out is not None and is_run_dir(self.out):
            raise click.UsageError(f"--out {self.out} is a run directory: scoring "
                                   "--predictions there would replace the run's own evaluation")  # fmt: skip

    @property
    def judge(self) -> JudgeOptions | None:
        if self.judge_model is None:
            return None
        return JudgeOptions(backend=self.judge_backend, preset=self.judge_model,
                            weights=self.judge_weights)  # fmt: skip


def _same_source(earlier: Mapping[str, Any], now: Mapping[str, Any]) -> bool:
    """Whether two evaluation sources name the same thing: they share a key and agree on
    every key they share (a summary written before a key was added still matches)."""
    shared = earlier.keys() & now.keys()
    return bool(shared) and all(earlier[key] == now[key] for key in shared)


def _describe_source(source: Any) -> str:
    if not isinstance(source, Mapping) or not source:
        return "an unknown source"
    return ", ".join(f"{key} {value}" for key, value in sorted(source.items()))


def _refuse_foreign_out(out: Path, source: Mapping[str, Any], *, fresh: bool,
                        resumable: bool) -> None:  # fmt: skip
    """Exit 2 before writing into ``out`` when it holds an evaluation of another source
    (or, unless ``resumable``, a predictions file no evaluation wrote), unless ``fresh``.
    Without this a second model resumed from the first one's completions, and scoring a
    file replaced an evaluation the user kept there."""
    if fresh:
        return
    summary_path = out / EVAL_SUMMARY
    if summary_path.is_file():
        try:
            earlier = json.loads(summary_path.read_text(encoding="utf-8")).get("source")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            earlier = None
        if not isinstance(earlier, Mapping) or not _same_source(earlier, source):
            raise click.UsageError(
                f"--out {out} already holds an evaluation of {_describe_source(earlier)}; "
                "add --fresh to replace it, or choose another --out"
            )
    elif not resumable and (out / PREDICTIONS).exists():
        raise click.UsageError(
            f"--out {out} already holds a {PREDICTIONS} that is not part of an evaluation; "
            "add --fresh to replace it, or choose another --out"
        )


def _score_completions(
    host: PluginHost, request: EvalRequest, checks: AnswerCheckRegistry
) -> tuple[dict[str, Any], Path]:
    """``--predictions``: score a file of completions."""
    assert request.predictions_file is not None and request.out is not None  # EvalRequest.check
    written = request.out / PREDICTIONS
    if written.exists() and written.samefile(request.predictions_file):
        raise click.UsageError(
            f"--out {request.out} would overwrite the input {request.predictions_file} with "
            "its own scores; choose another --out"
        )
    source = {"predictions_file": str(request.predictions_file)}
    _refuse_foreign_out(request.out, source, fresh=request.fresh, resumable=False)
    predictions = read_completions(request.predictions_file, checks)[: request.limit]
    names = request.evaluator_names or RunConfig().eval.evaluators
    summary = score_predictions(
        predictions, _load_evaluators(host, names, request.judge),
        label=request.label or request.predictions_file.stem, out_dir=request.out,
        source=source, context=RunContext(host),
    )  # fmt: skip
    return summary, request.out


def _generate_and_score(
    host: PluginHost, request: EvalRequest, checks: AnswerCheckRegistry
) -> tuple[dict[str, Any], Path]:
    """``--run`` or ``--model``: generate with the model, then score."""
    if request.run_dir is not None:
        target = _run_target(host, request.run_dir, request.out, request.limit,
                             request.dataset, request.split)  # fmt: skip
    else:
        assert request.preset and request.dataset and request.out  # EvalRequest.check
        target = _model_target(host, request.preset, request.weights, request.backend,
                               request.dataset, request.split, request.overrides, request.out,
                               request.limit)  # fmt: skip
    config = target.config
    dataset = request.dataset.split(":", 1)[0] if request.dataset else None
    default_evaluators = DATASET_EVALUATORS.get(dataset or "", config.eval.evaluators)
    evaluators = _load_evaluators(
        host, request.evaluator_names or default_evaluators, request.judge
    )
    try:
        backend = host.backends.load(config.model.backend)()
    except UnknownNameError as exc:
        raise ConfigError(f"model.backend: {exc}") from None
    spec = ModelSpec.for_evaluation(config, request.dtype or DATASET_DTYPES.get(dataset or ""))
    if target.run is None:
        backend.validate(spec)
    # A folder with completions but no summary is an interrupted evaluation: it resumes.
    _refuse_foreign_out(target.out, target.source, fresh=request.fresh, resumable=True)
    run = target.run
    writing_into = run if run and target.out.resolve().is_relative_to(run.path.resolve()) else None
    with run_lock(writing_into, "tunix eval --run") if writing_into else contextlib.nullcontext():
        if request.fresh:
            (target.out / PREDICTIONS).unlink(missing_ok=True)
        def progress(message: str) -> None:
            click.echo(message, err=True)

        model = (backend.load(spec, progress=progress) if run is None
                 else backend.load_export(run.model_dir, spec, progress=progress))  # fmt: skip
        summary = evaluate_examples(
            model, target.examples, evaluators,
            system_prompt=config.dataset.system_prompt,
            max_new_tokens=request.max_new_tokens or config.eval.max_new_tokens,
            batch_size=request.batch_size or config.eval.batch_size,
            out_dir=target.out, label=request.label or target.label,
            progress=progress, source=target.source,
            context=RunContext(host), decoding=config.eval.decoding,
        )  # fmt: skip
    return summary, target.out


@click.command("compare")
@click.argument("first", type=click.Path(exists=True, path_type=Path))
@click.argument("second", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--show",
    default=20,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many flipped items of each kind to list.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_command(first: Path, second: Path | None, show: int, as_json: bool) -> None:
    """Before/after table of two evaluations and the items that flipped.

    Each of FIRST and SECOND is a run directory (its final evaluation), a run's baseline/
    folder, or a `tunix eval --out` folder. A run directory alone compares its baseline
    with its final evaluation.
    """
    before_dir, after_dir = comparing.resolve_pair(first, second)
    comparison = comparing.compare(comparing.load(before_dir), comparing.load(after_dir))
    if as_json:
        click.echo(json.dumps(comparing.comparison_to_dict(comparison), indent=2))
    else:
        click.echo(comparing.format_comparison(comparison, show=show))


@click.group("runs")
def runs() -> None:
    """Run directories and how they scored."""


@runs.command("list")
@click.option(
    "--dir",
    "root",
    default="runs",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding run directories.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def runs_list_command(root: Path, as_json: bool) -> None:
    """Runs ranked by primary score (answer accuracy of the final evaluation)."""
    rows = list_runs(root)
    if as_json:
        records = [{**attrs.asdict(row), "path": str(row.path)} for row in rows]
        click.echo(json.dumps(records, indent=2))
    elif not rows:
        click.echo(f"No runs under {root}.")
    else:
        click.echo(format_runs(rows))


@runs.command("show")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def runs_show_command(run_dir: Path) -> None:
    """One run: identity, stage times, before/after, flips and where its report is."""
    click.echo(format_run_details(report_html.gather(run_dir)))


@click.command("report")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Where to write the page (default: {REPORT} in the run directory).",
)
@click.option(
    "--show",
    default=report_html.DEFAULT_SHOWN_FLIPS,
    show_default=True,
    type=click.IntRange(min=0),
    help="How many flipped items of each kind to show with their completions.",
)
def report_command(run_dir: Path, out: Path | None, show: int) -> None:
    """Write a run's report: one self-contained HTML page (identity, stage times,
    before/after table, training curves, accuracy by category and difficulty, flipped
    items with both completions, evidence checksums). Works on unfinished runs too."""
    click.echo(f"wrote {report_html.write_report(run_dir, out, show=show)}")
