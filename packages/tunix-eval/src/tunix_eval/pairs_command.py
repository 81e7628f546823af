"""``tunix pairs``: on-policy preference pairs from a run's model (or a preset's), for
``tunix run --trainer dpo|simpo|orpo --set trainer.options.pairs=FILE``.

The work is :func:`tunix_eval.pairs.build_pairs`; this command reads the options, loads
the data and the model (a run's trained model through the backend its config names, as
``tunix generate`` does, or a preset through ``--backend``), and prints the summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import attrs
import click

from tunix_core.cli import host_of
from tunix_core.config import RunConfig, apply_overrides, load_run_config
from tunix_core.data.loading import load_split
from tunix_core.errors import DataError, TunixError
from tunix_core.evaluation import answer_checks_of, require_answer_checks
from tunix_core.layout import model_id
from tunix_core.plugins import PluginHost
from tunix_core.protocols import SamplingModel
from tunix_core.rundir import RunDirectory
from tunix_eval.chat import open_model
from tunix_eval.distill import Teacher, open_teacher
from tunix_eval.distill_command import SIGINT_EXIT_CODE
from tunix_eval.pairs import (
    CATEGORIES,
    REASONS,
    PairFiles,
    PairsSettings,
    build_pairs,
    pairs_job,
)
from tunix_eval.sampling_job import Sampling, check_earlier, require_sampling

# The flags a preset's model.* fields come from, so a backend's error names the flag.
FLAG_OF_FIELD = {"model.preset": "RUN_OR_MODEL", "model.weights": "--weights"}


@attrs.frozen
class _Source:
    """The model that answers, before it is loaded: its settings (plain data), its name in
    progress lines, and the defaults its run (or a new run) renders and answers with."""

    settings: dict[str, str]
    label: str
    system_prompt: str
    max_new_tokens: int
    run: Path | None  # else the preset:
    teacher: Teacher | None


def _source(run_or_model: str, weights: str | None, backend: str | None) -> _Source:
    """A run directory (anything that names a path) or else a model preset."""
    path = Path(run_or_model)
    if path.is_dir() or "/" in run_or_model or path.exists():
        if weights is not None or backend is not None:
            raise click.UsageError("--weights and --backend go with a model preset; a run "
                                   "directory brings its own model")  # fmt: skip
        if not path.is_dir():
            raise TunixError(f"RUN_OR_MODEL {run_or_model}: no such run directory")
        config_path = RunDirectory.open(path).config_path
        if not config_path.is_file():
            raise TunixError(
                f"{path} has no {config_path.name}; it is not a complete run directory"
            )
        config = load_run_config(config_path)
        trained = model_id(config.model.preset, config.model.weights)
        return _Source({"run": str(path.resolve()), "backend": config.model.backend,
                        "model_id": trained},
                       f"{path} (trained {trained})", config.dataset.system_prompt,
                       config.eval.max_new_tokens, path, None)  # fmt: skip
    teacher = Teacher(backend or "jax", run_or_model, weights or "default")
    defaults = RunConfig()
    return _Source({**attrs.asdict(teacher), "model_id": teacher.model_id},
                   f"{teacher.model_id} via {teacher.backend}", defaults.dataset.system_prompt,
                   defaults.eval.max_new_tokens, None, teacher)  # fmt: skip


def _open(host: PluginHost, source: _Source) -> SamplingModel:
    def say(line: str) -> None:
        click.echo(line, err=True)

    if source.teacher is not None:
        return open_teacher(host, source.teacher, say, flags=FLAG_OF_FIELD, command="tunix pairs")
    assert source.run is not None  # a source is a run or a preset
    opened = open_model(host, source.run, None, None, None)
    return require_sampling(opened.model, f"{source.run}: model.backend", "tunix pairs")


@click.command("pairs")
@click.argument("run_or_model", metavar="RUN_OR_MODEL")
@click.option(
    "--dataset", required=True, help="Dataset name or NAME:ARG, e.g. jsonl:questions.jsonl."
)
@click.option(
    "--split",
    type=click.Choice(["train", "eval"]),
    default="train",
    show_default=True,
    help="The split whose questions the model answers.",
)
@click.option(
    "--set",
    "dataset_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A dataset option (dataset.options), e.g. --set eval_fraction=0.1.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="Only the first N questions (a rerun with a larger N extends the output).",
)
@click.option(
    "--weights",
    help="With a model preset: default | random | gguf:PATH | "
    "safetensors:DIR | orbax:DIR. [default: default]",
)
@click.option(
    "--backend", help="With a model preset: the model backend plugin that loads it. [default: jax]"
)
@click.option(
    "-k",
    "--samples",
    type=int,
    default=4,
    show_default=True,
    help="Completions drawn per question (at least 2).",
)
@click.option(
    "--temperature",
    type=float,
    default=0.8,
    show_default=True,
    help="Sampling temperature (0 is greedy: every sample the same).",
)
@click.option(
    "--top-p",
    type=float,
    default=0.95,
    show_default=True,
    help="Nucleus sampling: draw from the tokens that make up this much probability.",
)
@click.option(
    "--max-new-tokens",
    type=int,
    help="Longest completion, in tokens. [default: the run's eval.max_new_tokens, or 160]",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the samples (batch i draws with seed + i).",
)
@click.option(
    "--batch-size",
    type=int,
    default=4,
    show_default=True,
    help="Questions per call to the model (each with --samples completions).",
)
@click.option(
    "--system-prompt",
    help="System prompt of the rendered questions. [default: the run's dataset.system_prompt]",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The pairs (FILE.jsonl); FILE.summary.json and FILE.questions.jsonl go beside it.",
)
@click.pass_context
def pairs_command(ctx: click.Context, run_or_model: str, dataset: str, split: str,
                  dataset_options: tuple[str, ...], limit: int | None, weights: str | None,
                  backend: str | None, samples: int, temperature: float, top_p: float,
                  max_new_tokens: int | None, seed: int, batch_size: int,
                  system_prompt: str | None, out: Path) -> None:  # fmt: skip
    """Ask RUN_OR_MODEL (a run directory, or a model preset) for K answers to every
    question of a dataset and pair, per question, an answer the item's check accepts with
    one it rejects, or else a well-formatted answer with a broken one.

    \b
      tunix pairs runs/<sft-run> --dataset dev-reasoning-v2 --limit 200 --out pairs.jsonl
      tunix run --trainer dpo --init-from runs/<sft-run> --dataset dev-reasoning-v2 \\
          --set trainer.options.pairs=pairs.jsonl

    An interrupted command continues when the same command is run again.
    """
    source = _source(run_or_model, weights, backend)
    new_tokens = source.max_new_tokens if max_new_tokens is None else max_new_tokens
    system = source.system_prompt if system_prompt is None else system_prompt
    sampling = Sampling(samples=samples, temperature=temperature, top_p=top_p,
                        max_new_tokens=new_tokens, seed=seed, batch_size=batch_size,
                        system_prompt=system)  # fmt: skip
    options = apply_overrides({}, dataset_options)
    settings = PairsSettings(source.settings, dataset, split, sampling, options)
    host = host_of(ctx)
    checks = answer_checks_of(host)
    # A --out this command cannot continue is refused before the data and model load.
    check_earlier(pairs_job(settings, out, checks=checks, model_label=source.label))
    try:
        examples = load_split(host.datasets, dataset, split, seed=RunConfig().dataset.seed,
                              options=options, limit=limit, transforms=host.transforms)  # fmt: skip
    except DataError as exc:
        raise DataError(f"--dataset {dataset}: {exc}") from None
    require_answer_checks(examples, checks, f"--dataset {dataset}")
    model = _open(host, source)

    def say(message: str) -> None:
        click.echo(message, err=True)

    try:
        summary = build_pairs(model, examples, settings, out, checks=checks,
                              model_label=source.label, progress=say, command=sys.argv)  # fmt: skip
    except KeyboardInterrupt:
        say(f"[pairs] interrupted; run the same command again to continue {out}")
        ctx.exit(SIGINT_EXIT_CODE)
    by_category = ", ".join(f"{c}: {summary['pairs_by_category'][c]}" for c in CATEGORIES)
    by_reason = ", ".join(f"{r}: {summary['unpaired_by_reason'][r]}" for r in REASONS)
    by_class = ", ".join(f"{kind}: {count}" for kind, count in summary["samples_by_class"].items())
    click.echo(f"{summary['pairs']} pairs from {summary['questions_done']} questions "
               f"({by_category}); {summary['unpaired']} without a pair ({by_reason})")  # fmt: skip
    click.echo(f"  {summary['samples']} samples ({by_class}); {summary['seconds']:.1f} s of "
               "sampling")  # fmt: skip
    files = PairFiles.beside(out)
    click.echo(f"  written to {files.pairs} (summary {files.summary})")
