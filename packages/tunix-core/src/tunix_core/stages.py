"""The stages of a run, in order: one table that the runner walks and that ``--resume``,
``--stop-after``, the manifest and validation read.

A stage's ``run`` returns the detail recorded in the manifest (:mod:`tunix_core.types`);
``skipped`` marks a stage that had nothing to do, ``stopped_early`` a training cut short.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from tunix_core import baseline_cache
from tunix_core.config import EVAL_SPLIT, OOD_SPLIT, RunConfig
from tunix_core.data.mixture import PartReport
from tunix_core.data.record import ReasoningExample, read_jsonl, write_jsonl
from tunix_core.evaluation import evaluate_examples, split_result
from tunix_core.evidence import sha256_file
from tunix_core.jsonio import write_json_atomic
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS, RunLayout
from tunix_core.phases import PhasePlan, naming_phase, phase_dir_name
from tunix_core.protocols import (
    Evaluator,
    LoadedModel,
    ModelBackend,
    ModelSpec,
    Packager,
    RunContext,
    Trainer,
)
from tunix_core.rundir import RunDirectory
from tunix_core.types import (
    BASELINE,
    DATASET,
    EVALUATE,
    PACKAGE,
    TRAIN,
    BaselineDetail,
    DatasetDetail,
    EvaluateDetail,
    PackageDetail,
    StageDetail,
    TrainDetail,
)

Progress = Callable[[str], None]


@attrs.define
class Plan:
    """Everything resolved and validated before a run directory exists."""

    config: RunConfig
    backend: ModelBackend  # one per run: it holds the base model once loaded
    trainer: Trainer
    evaluators: list[Evaluator]
    packager: Packager | None
    train_examples: list[ReasoningExample]
    eval_examples: list[ReasoningExample]
    # The run's host, given to every plugin; its run and progress are set once the stages run.
    context: RunContext
    # Per split, what each part of a dataset.mix contributed (empty for one dataset).
    dataset_parts: dict[str, tuple[PartReport, ...]] = attrs.field(factory=dict)
    # training.phases, resolved; empty for one training by ``trainer``.
    phases: list[PhasePlan] = attrs.field(factory=list)
    # The dataset's ood split, evaluated beside eval (eval.splits); empty: none.
    ood_examples: list[ReasoningExample] = attrs.field(factory=list)
    # The model.options the backend settled for this machine (already in ``config``),
    # each with its reason: the manifest's ``model_choices``.
    model_choices: dict[str, dict[str, str]] = attrs.field(factory=dict)



@attrs.frozen
class Stage:
    name: str
    # What the stage leaves in the run directory once it is done.
    outputs: Callable[[RunLayout], tuple[Path, ...]]
    run: Callable[[RunDirectory, Plan, Progress], StageDetail]
    # Its outputs resume a partial attempt, so they must go when an earlier stage reran.
    discard_outputs_after_upstream_rerun: bool = False


def write_dataset(run: RunDirectory, plan: Plan, progress: Progress) -> DatasetDetail:
    started = time.monotonic()
    write_jsonl(plan.train_examples, run.train_data_path)
    write_jsonl(plan.eval_examples, run.eval_data_path)
    ood_sha256 = None
    if plan.ood_examples:
        write_jsonl(plan.ood_examples, run.ood_data_path)
        ood_sha256 = sha256_file(run.ood_data_path)
    ood_text = f" and {len(plan.ood_examples)} ood" if plan.ood_examples else ""
    progress(f"[dataset] {plan.config.dataset.label}: {len(plan.train_examples)} training and "
             f"{len(plan.eval_examples)} evaluation{ood_text} item(s) written to {run.data_dir} "
             f"in {time.monotonic() - started:.2f}s")  # fmt: skip
    # Recorded so that validation can tell the run's evaluations from any other.
    parts = ({split: [part.as_dict() for part in parts]  # a dataset.mix
              for split, parts in plan.dataset_parts.items()} or None)  # fmt: skip
    return DatasetDetail(train_items=len(plan.train_examples), eval_items=len(plan.eval_examples),
                         eval_sha256=sha256_file(run.eval_data_path), parts=parts,
                         ood_items=len(plan.ood_examples) or None, ood_sha256=ood_sha256)  # fmt: skip


def run_eval_source(run: RunDirectory, dataset: str, split: str = EVAL_SPLIT) -> dict[str, Any]:
    """The ``source`` of an evaluation of ``run``'s model on its saved items of ``split``
    (eval or ood): what validation compares with the run's manifest (the model fingerprint
    is null before training; the dataset sha256 is null for a run that saved no items)."""
    data = run.eval_data_path if split == EVAL_SPLIT else run.ood_data_path
    return {
        "run": run.run_id,
        "model_id": run.manifest["model_id"],
        "model_fingerprint": run.manifest.get("model_fingerprint"),
        "dataset": dataset,
        "dataset_sha256": sha256_file(data) if data.is_file() else None,
        "split": split,
    }


def evaluate_baseline(run: RunDirectory, plan: Plan, progress: Progress) -> BaselineDetail:
    if not plan.config.eval.baseline:
        return BaselineDetail(skipped=True)
    summary = _evaluate(run, plan, progress, trained=False, out_dir=run.baseline_dir,
                        ood_dir=run.baseline_ood_dir, label="baseline")  # fmt: skip
    return BaselineDetail(primary_score=summary["primary_score"])


def train(run: RunDirectory, plan: Plan, progress: Progress) -> TrainDetail:
    train_examples = read_jsonl(run.train_data_path)
    if plan.phases:
        return _train_phases(run, plan, train_examples, progress)
    result = plan.trainer.train(
        plan.config, run, train_examples, backend=plan.backend, context=plan.context
    )
    if result.export is not None:
        run.manifest["model_id"] = result.export.model_id
        run.manifest["model_fingerprint"] = result.export.fingerprint
    return TrainDetail(steps=result.steps, stopped_early=result.stopped_early,
                       reason=result.reason, init_from=init_from_record(plan.config))  # fmt: skip


def _train_phases(run: RunDirectory, plan: Plan, train_examples: list[ReasoningExample],
                  progress: Progress) -> TrainDetail:  # fmt: skip
    """Train ``plan.phases`` in order (see :mod:`tunix_core.phases`); the detail lists
    every phase: trainer, steps, where it wrote and its model's fingerprint."""
    records: list[dict[str, Any]] = []
    init_from = plan.config.model.init_from
    result = None
    for index, phase in enumerate(plan.phases, 1):
        last = index == len(plan.phases)
        name = phase.config.trainer.name
        where = run if last else RunDirectory(
            run.phases_dir / phase_dir_name(index, name), run.manifest)  # fmt: skip
        record_path = where.phase_record_path
        if not last and record_path.is_file():
            record = json.loads(record_path.read_text(encoding="utf-8"))
            progress(f"[train] phase {index}/{len(plan.phases)} ({name}) was done earlier")
        else:
            progress(f"[train] phase {index}/{len(plan.phases)}: {name}, "
                     f"{phase.config.training.steps} steps")  # fmt: skip
            config = phase.config
            if init_from is not None:
                config = attrs.evolve(config, model=attrs.evolve(config.model, init_from=init_from))
            where.path.mkdir(parents=True, exist_ok=True)
            with naming_phase(index - 1):
                result = phase.make_trainer().train(config, where, train_examples,
                                                    backend=plan.backend, context=plan.context)  # fmt: skip
            record = {"phase": index, "trainer": name, "steps": result.steps,
                      "stopped_early": result.stopped_early, "reason": result.reason,
                      "directory": str(where.path.relative_to(run.path)),
                      "model_fingerprint": result.export.fingerprint if result.export else None}  # fmt: skip
            if not last:
                write_json_atomic(record_path, record)
        records.append(record)
        init_from = str(where.path)
    assert result is not None  # the last phase always trains
    if result.export is not None:
        run.manifest["model_id"] = result.export.model_id
        run.manifest["model_fingerprint"] = result.export.fingerprint
    return TrainDetail(steps=result.steps, stopped_early=result.stopped_early,
                       reason=result.reason, phases=records,
                       init_from=init_from_record(plan.config))  # fmt: skip


def init_from_record(config: RunConfig) -> dict[str, Any] | None:
    """What a run started from ``model.init_from`` records of it: the run and the
    fingerprint of its model."""
    if config.model.init_from is None:
        return None
    layout = RunLayout(Path(config.model.init_from))
    exported = json.loads(layout.model_config_path.read_text(encoding="utf-8"))
    return {"run": str(layout.path), "model_fingerprint": exported.get("fingerprint")}


def evaluate_trained(run: RunDirectory, plan: Plan, progress: Progress) -> EvaluateDetail:
    summary = _evaluate(run, plan, progress, trained=True, out_dir=run.path, ood_dir=run.ood_dir,
                        label="final")  # fmt: skip
    return EvaluateDetail(primary_score=summary["primary_score"])


def package(run: RunDirectory, plan: Plan, progress: Progress) -> PackageDetail:
    if plan.packager is None:
        return PackageDetail(skipped=True)
    settings = plan.config.package
    options = {**settings.options, "max_bundle_bytes": settings.max_bundle_bytes,
               "prediction_sample": settings.prediction_sample}  # fmt: skip
    bundle = plan.packager.package(run, options, backend=plan.backend, context=plan.context)
    return PackageDetail(bundle=str(bundle))


def _evaluate(run: RunDirectory, plan: Plan, progress: Progress, *, trained: bool,
              out_dir: Path, ood_dir: Path, label: str) -> dict[str, Any]:  # fmt: skip
    """Evaluate the base model (``trained`` false) or the export on the run's saved eval
    items, then on its ood items if it saved any (into ``ood_dir``), and return the eval
    split's summary, which also reports the ood results under ``splits``."""
    config = plan.config
    loaded: list[LoadedModel] = []

    def model() -> LoadedModel:  # loaded only when something is generated
        if not loaded:
            spec = ModelSpec.for_evaluation(config)
            loaded.append(plan.backend.load_export(run.model_dir, spec, progress=progress)
                          if trained else plan.backend.load(spec, progress=progress))  # fmt: skip
        return loaded[0]

    splits = [(EVAL_SPLIT, run.eval_data_path, out_dir, config.eval.limit, label)]
    if run.ood_data_path.is_file():
        ood_limit = config.eval.ood_limit or config.eval.limit
        splits.append((OOD_SPLIT, run.ood_data_path, ood_dir, ood_limit,
                       f"{label}-{OOD_SPLIT}"))  # fmt: skip
    summaries = {}
    for split, data_path, where, limit, split_label in splits:
        # The items the dataset stage saved, as training reads its own: after --resume
        # exactly those the run's manifest records, whatever the provider would draw today.
        saved = read_jsonl(data_path)
        examples = saved[:limit] if limit else saved
        source = run_eval_source(run, config.dataset.label, split)
        cache_key = None
        if not trained and config.eval.baseline_cache:
            cache_key = baseline_cache.baseline_key(config, plan.context, examples, split=split)
            entry = baseline_cache.lookup(cache_key)
            where_cached = baseline_cache.entry_path(cache_key)
            if entry is not None:
                summaries[split] = baseline_cache.restore(entry, where, source)
                progress(f"[{split_label}] baseline cache hit: {where_cached} (measured by run "
                         f"{summaries[split]['source']['cached_from']}); copied to {where}")  # fmt: skip
                continue
            progress(f"[{split_label}] baseline cache miss: {where_cached}")
        summaries[split] = evaluate_examples(
            model(),
            examples,
            plan.evaluators,
            system_prompt=config.dataset.system_prompt,
            max_new_tokens=config.eval.max_new_tokens,
            batch_size=config.eval.batch_size,
            out_dir=where,
            label=split_label,
            progress=progress,
            context=plan.context,
            source=source,
            decoding=config.eval.decoding,
        )
        if cache_key is not None:
            progress(f"[{split_label}] stored in the baseline cache: "
                     f"{baseline_cache.store(cache_key, where)}")  # fmt: skip
    summary = summaries[EVAL_SPLIT]
    if OOD_SPLIT in summaries:
        summary["splits"] = {OOD_SPLIT: split_result(summaries[OOD_SPLIT], ood_dir, out_dir)}
        write_json_atomic(out_dir / EVAL_SUMMARY, summary)
    return summary


def _ood_outputs(ood_dir: Path, run: RunLayout) -> tuple[Path, ...]:
    """What an evaluation leaves in ``ood_dir``, for a run that saved ood items."""
    if not run.ood_data_path.is_file():
        return ()
    return (ood_dir / EVAL_SUMMARY, ood_dir / PREDICTIONS)


STAGES = (
    Stage(DATASET, lambda run: (run.train_data_path, run.eval_data_path), write_dataset),
    Stage(
        BASELINE,
        lambda run: (
            run.baseline_summary_path,
            run.baseline_predictions_path,
            *_ood_outputs(run.baseline_ood_dir, run),
        ),
        evaluate_baseline,
    ),
    Stage(TRAIN, lambda run: (run.metrics_path, run.model_config_path), train),
    Stage(
        EVALUATE,
        lambda run: (run.summary_path, run.predictions_path, *_ood_outputs(run.ood_dir, run)),
        evaluate_trained,
        discard_outputs_after_upstream_rerun=True,
    ),
    # The bundle goes where package.options.out_dir says; validation checks it itself.
    Stage(PACKAGE, lambda run: (), package),
)
