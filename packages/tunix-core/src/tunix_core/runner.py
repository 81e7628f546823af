"""``tunix run``: validate everything, create the run directory, drive the stages.

Stages run in the order of :data:`tunix_core.stages.STAGES`; each records its
status and time in the manifest, so ``--resume`` skips what is done and the trainer and
evaluation pick up from their own partial outputs (checkpoints, predictions so far).
The run directory is locked while the stages run, so a second ``--resume`` of the same
run fails at once instead of doing every step twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml

from tunix_core.config import OOD_SPLIT, RunConfig, load_run_config, unstructure_config
from tunix_core.data.loading import split_names
from tunix_core.data.mixture import check_part_names, load_dataset_split, mixture_splits
from tunix_core.data.record import ReasoningExample
from tunix_core.errors import ConfigError
from tunix_core.evaluation import headline_metrics, read_summary, require_answer_checks
from tunix_core.layout import MANIFEST, RunLayout, model_id
from tunix_core.phases import PhasePlan, naming_phase, phase_configs
from tunix_core.plugins import PluginHost
from tunix_core.protocols import ModelBackend, ModelSpec, ResolvingBackend, RunContext, Trainer
from tunix_core.registry import UnknownNameError
from tunix_core.rundir import RunDirectory, new_run_id, run_lock
from tunix_core.stages import STAGES, Plan, Stage
from tunix_core.types import STAGE_NAMES, TRAIN, PackageDetail, TrainDetail

log = logging.getLogger("tunix.run")


def _resolve(registry: Any, name: str, field: str) -> Any:
    try:
        return registry.load(name)()
    except UnknownNameError as exc:
        raise ConfigError(f"{field}: {exc}") from None


def _plan_phases(context: RunContext, config: RunConfig) -> list[PhasePlan]:
    """Each phase of ``training.phases`` with its trainer resolved and validated."""
    phases = []
    for index, phase_config in enumerate(phase_configs(config)):
        field = f"training.phases[{index}].trainer"
        try:
            make_trainer = context.host.trainers.load(phase_config.trainer.name)
        except UnknownNameError as exc:
            raise ConfigError(f"{field}: {exc}") from None
        with naming_phase(index):
            make_trainer().validate(phase_config, context=context)
        phases.append(PhasePlan(phase_config, make_trainer))
    return phases


def plan_run(host: PluginHost, config: RunConfig) -> Plan:
    """Resolve every plugin and load the data; raise before anything is written."""
    context = RunContext(host)
    # The trainer the user named is checked first: its error lists the installed ones.
    named: Trainer | None = (
        None
        if config.training.phases
        else _resolve(host.trainers, config.trainer.name, "trainer.name")
    )
    backend: ModelBackend = _resolve(host.backends, config.model.backend, "model.backend")
    # Settled before the phases, so every phase's config holds the machine's choice.
    config, model_choices = settle_model_options(backend, config)
    phases = _plan_phases(context, config)
    trainer: Trainer = named if named is not None else phases[0].make_trainer()
    evaluators = [_resolve(host.evaluators, n, "eval.evaluators") for n in config.eval.evaluators]
    packager = (
        _resolve(host.packagers, config.package.packager, "package.packager")
        if config.package.enabled
        else None
    )
    try:
        if config.dataset.mix:
            check_part_names(host.datasets, config.dataset.mix)
        else:
            host.datasets.entry(config.dataset.name)
    except UnknownNameError as exc:
        raise ConfigError(f"dataset.name: {exc}") from None
    if config.model.init_from is not None:
        _check_init_from(Path(config.model.init_from))
    backend.validate(ModelSpec.from_config(config))
    if not phases:
        trainer.validate(config, context=context)
    data = config.dataset
    train, evaluation = (
        load_dataset_split(host.datasets, data, split, limit=limit, transforms=host.transforms)
        for split, limit in (("train", data.train_limit), ("eval", data.eval_limit))
    )
    for split, loaded in (("train", train), ("eval", evaluation)):  # a reward checks answers too
        require_answer_checks(loaded.examples, host.answer_checks,
                              f"dataset {data.label!r} ({split} split)")  # fmt: skip
    parts = {split: loaded.parts for split, loaded in (("train", train), ("eval", evaluation))
             if loaded.parts}  # fmt: skip
    ood = _ood_examples(host, config)
    _check_during_training(config, has_ood=bool(ood))
    return Plan(config, backend, trainer, evaluators, packager, train.examples,
                evaluation.examples, context, parts, phases, ood, model_choices)  # fmt: skip


def _check_during_training(config: RunConfig, *, has_ood: bool) -> None:
    """``eval.during_training`` reads the items the dataset stage saves: its split must be one."""
    during = config.eval.during_training
    if during.every is None or during.split != OOD_SPLIT or has_ood:
        return
    why = ("no part of the mixture has one" if config.dataset.mix else
           "eval.splits leaves it out" if config.eval.splits is not None else
           f"dataset {config.dataset.label!r} has none")  # fmt: skip
    raise ConfigError(f"eval.during_training.split: the run saves no {OOD_SPLIT!r} items "
                      f"({why}); use split: eval")  # fmt: skip


def settle_model_options(
    backend: ModelBackend, config: RunConfig
) -> tuple[RunConfig, dict[str, dict[str, str]]]:
    """``config`` with the ``model.options`` the backend leaves to the machine settled
    (see :class:`ResolvingBackend`), and each choice with its reason."""
    if not isinstance(backend, ResolvingBackend):
        return config, {}
    choices = backend.resolve_options(config.model.options)
    if not choices:
        return config, {}
    options = {**config.model.options, **{name: c["value"] for name, c in choices.items()}}
    return attrs.evolve(config, model=attrs.evolve(config.model, options=options)), choices


def _ood_examples(host: PluginHost, config: RunConfig) -> list[ReasoningExample]:
    """The dataset's ood split when ``eval.splits`` asks for it, or (unset) when the
    dataset offers one (a mixture does when one of its parts does)."""
    requested = config.eval.splits
    if requested is not None and OOD_SPLIT not in requested:
        return []
    data = config.dataset
    offered = (mixture_splits(host.datasets, data.mix) if data.mix
               else split_names(host.datasets, data.name))  # fmt: skip
    if OOD_SPLIT not in offered:
        if requested is None:
            return []
        raise ConfigError(f"eval.splits: dataset {data.label!r} has no {OOD_SPLIT!r} split "
                          f"(it has {', '.join(offered)})")  # fmt: skip
    # dataset.eval_limit caps ood as it caps eval (a tiny test run draws a few of each).
    loaded = load_dataset_split(host.datasets, data, OOD_SPLIT, limit=data.eval_limit,
                                transforms=host.transforms)  # fmt: skip
    require_answer_checks(loaded.examples, host.answer_checks,
                          f"dataset {data.label!r} ({OOD_SPLIT} split)")  # fmt: skip
    return loaded.examples


def _check_init_from(path: Path) -> None:
    """``model.init_from`` must name a run whose training finished with an export."""
    layout = RunLayout(path)
    if not layout.manifest_path.is_file():
        raise ConfigError(f"model.init_from: {path} is not a run directory (no {MANIFEST})")
    if not layout.model_config_path.is_file():
        raise ConfigError(
            f"model.init_from: {path} has no trained model ({layout.model_config_path} is "
            f"missing); finish it first: tunix run --resume {path}"
        )


def start_run(
    host: PluginHost, config: RunConfig, *, config_path: Path | None, command: Sequence[str]
) -> tuple[RunDirectory, Plan]:
    plan = plan_run(host, config)
    root = Path(config.run.output_dir)
    run = RunDirectory.create(
        root,
        new_run_id(config.run.name),
        model_id=model_id(config.model.preset, _weights_label(config)),
        dataset=config.dataset.label,
        trainer=config.trainer.name,
        config_path=str(config_path) if config_path else None,
        command=command,
        model_choices=plan.model_choices,
    )
    run.config_path.write_text(yaml.safe_dump(unstructure_config(plan.config), sort_keys=False))
    return run, plan


def _weights_label(config: RunConfig) -> str:
    init_from = config.model.init_from
    return f"init-from:{Path(init_from).name}" if init_from else config.model.weights


def resume_run(host: PluginHost, path: Path) -> tuple[RunDirectory, Plan]:
    run = RunDirectory.open(path)
    config = load_run_config(run.config_path)
    return run, plan_run(host, config)


def _attach_log(run: RunDirectory) -> logging.Handler:
    """Everything logged during the run goes to ``run.log``; tunix's own messages are not
    also echoed by a console handler some library put on the root logger."""
    handler = logging.FileHandler(run.log_path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    tunix_logger = logging.getLogger("tunix")
    tunix_logger.addHandler(handler)
    tunix_logger.setLevel(logging.INFO)
    tunix_logger.propagate = False
    logging.getLogger().addHandler(handler)
    return handler


def _detach_log(handler: logging.Handler) -> None:
    logging.getLogger("tunix").removeHandler(handler)
    logging.getLogger("tunix").propagate = True
    logging.getLogger().removeHandler(handler)
    handler.close()


FINISHED = frozenset({"done", "skipped"})  # stage states --resume does not run again


def execute(
    host: PluginHost,
    run: RunDirectory,
    plan: Plan,
    *,
    echo: Callable[[str], None],
    stop_after: str | None = None,
) -> dict[str, Any]:
    """Run the stages that are not done yet, holding the run's lock (:func:`run_lock`).
    Returns per-stage results for the summary. On Ctrl-C the stage and the run are marked
    ``interrupted``, ``echo`` gets how to continue, and the KeyboardInterrupt propagates."""
    with run_lock(run, "tunix run"):
        return _execute_locked(host, run, plan, echo=echo, stop_after=stop_after)


def _execute_locked(
    host: PluginHost,
    run: RunDirectory,
    plan: Plan,
    *,
    echo: Callable[[str], None],
    stop_after: str | None,
) -> dict[str, Any]:
    handler = _attach_log(run)

    def progress(message: str) -> None:
        log.info(message)
        echo(message)

    plan.context = plan.context.within(run, progress)
    for name, choice in run.manifest.get("model_choices", {}).items():
        progress(f"[run] model.options.{name}: {choice['value']} ({choice['reason']})")

    host.manager.hook.tunix_run_started(run=run, config=unstructure_config(plan.config))
    results: dict[str, Any] = {}
    status = "failed"
    error: BaseException | None = None
    upstream_ran = False  # once a stage runs, every later one must run again on its output
    try:
        for stage in STAGES:
            if run.stage_status(stage.name) in FINISHED and not upstream_ran:
                progress(f"[{stage.name}] already done, skipping")
            else:
                if stage.discard_outputs_after_upstream_rerun and upstream_ran:
                    for output in stage.outputs(run):  # made from inputs that changed since
                        output.unlink(missing_ok=True)
                results[stage.name] = _run_stage(host, run, plan, stage, progress)
                upstream_ran = True
            if stage.name == stop_after:  # also when that stage was already done
                break
        finished_all = all(run.stage_status(name) in FINISHED for name in STAGE_NAMES)
        status = "succeeded" if finished_all else "interrupted"
    except KeyboardInterrupt as exc:
        status, error = "interrupted", exc
        progress(f"interrupted; continue with: tunix run --resume {run.path}")
        raise
    except BaseException as exc:
        status, error = "failed", exc
        raise
    finally:
        _finish_run(host, run, status, error)
        _detach_log(handler)
    return results


def _run_stage(
    host: PluginHost, run: RunDirectory, plan: Plan, stage: Stage, progress: Callable[[str], None]
) -> dict[str, Any]:
    """Run one stage, recording its status, time and detail in the manifest."""
    progress(f"[{stage.name}] starting")
    run.start_stage(stage.name)
    started = time.monotonic()
    try:
        detail = stage.run(run, plan, progress)
    except KeyboardInterrupt:
        run.finish_stage(stage.name, time.monotonic() - started, status="interrupted")
        raise
    except BaseException:
        run.finish_stage(stage.name, time.monotonic() - started, status="failed")
        raise
    seconds = time.monotonic() - started
    status = "done"
    if detail.skipped:
        status = "skipped"
    elif isinstance(detail, TrainDetail) and detail.stopped_early:
        status = "stopped"  # evaluate and package go on; --resume trains further
    plain = detail.to_dict()
    run.finish_stage(stage.name, seconds, status=status, detail=plain)
    progress(f"[{stage.name}] {status} in {seconds:.1f}s")
    host.manager.hook.tunix_stage_finished(run=run, stage=stage.name, seconds=seconds)
    return plain


def _finish_run(host: PluginHost, run: RunDirectory, status: str, error: BaseException | None) -> None:
    run.finish(status, None if error is None else f"{type(error).__name__}: {error}")
    try:
        host.manager.hook.tunix_run_finished(run=run, status=status, error=error)
    except Exception:  # a lifecycle hook must not hide the run's own outcome
        log.exception("a tunix_run_finished hook failed")


def closing_table(run: RunDirectory) -> str:
    """Before -> after (format compliance, answer accuracy), time per stage, the bundle."""
    lines = [f"Run {run.run_id}: {run.manifest['status']}"]
    before = read_summary(run.baseline_summary_path)
    after = read_summary(run.summary_path)
    rows = [("metric", "before", "after")]
    b, a = headline_metrics(before), headline_metrics(after)
    for key in sorted(set(b) | set(a)):
        rows.append((key, _pct(b.get(key)), _pct(a.get(key))))
    width = max(len(r[0]) for r in rows)
    lines += [f"  {r[0]:<{width}}  {r[1]:>8}  ->  {r[2]:>8}" for r in rows]
    for stage in STAGE_NAMES:
        record = run.manifest["stages"][stage]
        lines.append(f"  {stage:<9} {record['status']:<8} {record.get('seconds', 0.0):8.1f}s")
    if run.stage_status(TRAIN) == "stopped":
        reason = TrainDetail.read(run.manifest).reason or ""
        lines.append(f"  training stopped early ({reason}); continue with: tunix run --resume {run.path}")
    bundle = PackageDetail.read(run.manifest).bundle
    if bundle:
        lines.append(f"  bundle: {bundle}")
    lines.append(f"  run directory: {run.path}")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


__all__ = ["closing_table", "execute", "plan_run", "resume_run", "start_run"]
