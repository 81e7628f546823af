"""``tunix distill``: a teacher model's checked answers to a dataset, as a new dataset.

The work is :func:`tunix_eval.distill.distill`; this command reads the options, loads the
data, the teacher (through its backend) and the optional judge (:mod:`tunix_eval.judge`,
for categories without a checkable reference answer), and prints progress.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from tunix_core.config import DEFAULT_SYSTEM_PROMPT, RunConfig, apply_overrides
from tunix_core.data.loading import load_split
from tunix_core.errors import DataError
from tunix_core.evaluation import answer_checks_of, require_answer_checks
from tunix_core.layout import model_id
from tunix_core.plugins import PluginHost, backend_for, validate_spec
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.distill import (
    DISTILLED,
    MANIFEST,
    DistillSettings,
    SampleJudge,
    Teacher,
    distill,
    open_teacher,
)
from tunix_eval.judge import MAX_SCORE, MIN_SCORE, JudgeEvaluator, JudgeOptions
from tunix_eval.sampling_job import Sampling

# What a shell reports for a command ended by SIGINT (128 + 2).
SIGINT_EXIT_CODE = 130
JUDGE_FLAG_OF_FIELD = {"model.preset": "--judge-model", "model.weights": "--judge-weights"}


def _host(ctx: click.Context) -> PluginHost:
    host: PluginHost = ctx.find_root().obj
    return host


def build_judge(host: PluginHost, options: JudgeOptions, categories: Sequence[str]) -> SampleJudge:
    """A :class:`SampleJudge` over ``categories`` that keeps the samples the rubric judge
    scores ``options.pass_score`` or more; its model is checked now and loaded on first use."""
    backend = backend_for(host, options.backend, "--judge-backend")
    validate_spec(backend, options.spec(), JUDGE_FLAG_OF_FIELD)
    evaluator = JudgeEvaluator(options)
    context = RunContext(host)

    def verdicts(predictions: Sequence[Prediction]) -> list[bool | None]:
        per_item = evaluator.evaluate(predictions, context=context).per_item
        return [per_item[prediction.id]["judge_correct"] for prediction in predictions]

    settings = {"backend": options.backend, "preset": options.preset, "weights": options.weights,
                "model_id": model_id(options.preset, options.weights),
                "min_score": options.pass_score}  # fmt: skip
    return SampleJudge(frozenset(categories), verdicts, settings)


@click.command("distill")
@click.option("--dataset", required=True, help="Dataset name or NAME:ARG, e.g. jsonl:questions.jsonl.")
@click.option("--split", type=click.Choice(["train", "eval"]), default="train", show_default=True,
              help="The split whose questions the teacher answers.")
@click.option("--set", "dataset_options", multiple=True, metavar="KEY=VALUE",
              help="A dataset option (dataset.options), e.g. --set eval_fraction=0.1.")
@click.option("--limit", type=click.IntRange(min=1),
              help="Only the first N questions (a rerun with a larger N extends the output).")
@click.option("--teacher-preset", default=RunConfig().model.preset, show_default=True,
              help="Model preset of the teacher.")
@click.option("--teacher-weights", default="default", show_default=True,
              help="Weights of the teacher: default | random | gguf:PATH | safetensors:DIR | orbax:DIR.")
@click.option("--backend", default="jax", show_default=True,
              help="Model backend plugin that loads the teacher.")
@click.option("-k", "--samples", type=int, default=4, show_default=True,
              help="Completions drawn per question.")
@click.option("--temperature", type=float, default=0.8, show_default=True,
              help="Sampling temperature (0 is greedy: every sample the same).")
@click.option("--top-p", type=float, default=0.95, show_default=True,
              help="Nucleus sampling: draw from the tokens that make up this much probability.")
@click.option("--max-new-tokens", type=int, default=RunConfig().eval.max_new_tokens,
              show_default=True, help="Longest completion, in tokens.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the samples (batch i draws with seed + i).")
@click.option("--batch-size", type=int, default=4, show_default=True,
              help="Questions per call to the teacher (each with --samples completions).")
@click.option("--system-prompt", default=DEFAULT_SYSTEM_PROMPT,
              help="System prompt of the rendered questions (default: dataset.system_prompt's default).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help=f"Output folder: {DISTILLED}, {MANIFEST} and the questions log.")
@click.option("--judge-model", help="Judge model preset for the --judge-category questions.")
@click.option("--judge-weights", default="default", show_default=True, help="Weights of the judge.")
@click.option("--judge-backend", default="jax", show_default=True,
              help="Model backend plugin that loads the judge.")
@click.option("--judge-min-score", type=click.IntRange(MIN_SCORE, MAX_SCORE), default=4,
              show_default=True, help="Lowest rubric score (1-5) a judged sample needs to be kept.")
@click.option("--judge-category", "judge_categories", multiple=True, metavar="CATEGORY",
              help="A category without a checkable reference answer: the judge decides its "
                   "samples (repeat for more).")
@click.pass_context
def distill_command(ctx: click.Context, dataset: str, split: str,
                    dataset_options: tuple[str, ...], limit: int | None,
                    teacher_preset: str, teacher_weights: str, backend: str, samples: int,
                    temperature: float, top_p: float, max_new_tokens: int, seed: int,
                    batch_size: int, system_prompt: str, out: Path, judge_model: str | None,
                    judge_weights: str, judge_backend: str, judge_min_score: int,
                    judge_categories: tuple[str, ...]) -> None:  # fmt: skip
    """Ask a teacher model for K answers to every question of a dataset and keep those
    that pass the item's answer check (or the judge) as a JSONL dataset.

    \b
      tunix distill --dataset dev-reasoning-v2 --limit 20 --out distilled/dev2
      tunix run --trainer jax --dataset jsonl:distilled/dev2/distilled.jsonl

    An interrupted distillation continues when the same command is run again.
    """
    if judge_categories and judge_model is None:
        raise click.UsageError("--judge-category needs --judge-model: the judge decides those questions")
    if judge_model is not None and not judge_categories:
        raise click.UsageError("--judge-model needs --judge-category: the categories without a "
                               "checkable reference answer, which the judge decides")  # fmt: skip
    sampling = Sampling(samples=samples, temperature=temperature, top_p=top_p,
                        max_new_tokens=max_new_tokens, seed=seed, batch_size=batch_size,
                        system_prompt=system_prompt)  # fmt: skip
    options = apply_overrides({}, dataset_options)
    settings = DistillSettings(Teacher(backend, teacher_preset, teacher_weights), dataset, split,
                               sampling, options)  # fmt: skip
    host = _host(ctx)
    try:
        examples = load_split(host.datasets, dataset, split, seed=RunConfig().dataset.seed,
                              options=options, limit=limit, transforms=host.transforms)  # fmt: skip
    except DataError as exc:
        raise DataError(f"--dataset {dataset}: {exc}") from None
    checks = answer_checks_of(host)
    # Judged items too: the judge sets each verdict beside the item's answer check.
    require_answer_checks(examples, checks, f"--dataset {dataset}")
    judge = None
    if judge_model is not None:
        judge_options = JudgeOptions(backend=judge_backend, preset=judge_model,
                                     weights=judge_weights, pass_score=judge_min_score)  # fmt: skip
        judge = build_judge(host, judge_options, judge_categories)
    teacher = open_teacher(host, settings.teacher, lambda line: click.echo(line, err=True))

    def say(message: str) -> None:
        click.echo(message, err=True)

    try:
        manifest = distill(teacher, examples, settings, out, checks=checks,
                           judge=judge, progress=say, command=sys.argv)  # fmt: skip
    except KeyboardInterrupt:
        say(f"[distill] interrupted; run the same command again to continue in {out}")
        ctx.exit(SIGINT_EXIT_CODE)
    fraction = manifest["kept_fraction"]
    click.echo(f"kept {manifest['kept']} of {manifest['samples']} samples "
               f"({'n/a' if fraction is None else f'{fraction:.1%}'}); "
               f"{manifest['questions_with_kept_samples']} of {manifest['questions_done']} "
               f"questions have at least one; {manifest['seconds']:.1f} s of teacher time")  # fmt: skip
    for category, counts in manifest["by_category"].items():
        click.echo(f"  {category}: kept {counts['kept']}/{counts['samples']} samples, "
                   f"{counts['questions_with_kept_samples']}/{counts['questions']} questions")  # fmt: skip
    click.echo(f"  written to {out / DISTILLED} (manifest {out / MANIFEST})")
