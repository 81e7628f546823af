"""``tunix plan``: split one session's hours between the stages of a run, from step times
measured first on the devices at hand.

The measurement is a short run of the config itself (its trainers, phases, data, model
and devices) in a temporary directory: a few compiled steps of every training phase and
one evaluation batch per split, stopping after ``evaluate``; its last step's checkpoint
gives the seconds of one save. From it the plan sets, per phase, the steps that fit with
their checkpoint saves, a ``time_budget`` that stops the phase at its share of the
session, and a ``checkpoint_every`` that loses at most ``max_loss`` to a preemption; the
rest of the session is the baseline, the evaluation and a margin for export, the judges'
path gate and packaging. The plan is a complete config for ``tunix run -c``.

Within a weekly quota (``weekly_hours``, of which ``used_hours`` are spent) a session gets
at most what the week has left. ``--resume RUN`` plans a later session of a run: the hours
the run records count as used, its unfinished phases share the session, and their new
``time_budget`` and ``checkpoint_every`` go into the run's own ``config.yaml`` (the one
``tunix run --resume`` reads; the one it replaces is kept beside it), its step targets
unchanged.

Nothing here imports JAX: the measuring run goes through :func:`tunix_core.api.run`.
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import yaml

from tunix_core import api
from tunix_core.config import RunConfig, load_yaml, move_old_fields, structure_config
from tunix_core.errors import ConfigError
from tunix_core.layout import CHECKPOINTS, METRICS, PHASES, RunLayout
from tunix_core.phases import phase_configs, phase_dir_name
from tunix_core.plugins import PluginHost

# Steps each phase takes while measuring: the first compiles, the others give the step time.
MEASURE_STEPS = 4
# The jax trainers' default trainer.options.reserve_fraction: the share of a time_budget
# they keep free after training (tunix_jax.options.JaxTrainerOptions).
DEFAULT_RESERVE_FRACTION = 0.15


@attrs.frozen
class PhaseTiming:
    """One training phase as measured: its trainer, the seconds of its first (compiling)
    step and of each later step, and what its config asks for: ``training.steps`` (which
    also sets its share of the time) or ``training.epochs``. ``save_seconds``: one
    checkpoint save, None where the measuring run left no checkpoint to time."""

    trainer: str
    first_step_seconds: float
    step_seconds: float
    configured_steps: int
    reserve_fraction: float = DEFAULT_RESERVE_FRACTION
    epochs: float | None = None
    save_seconds: float | None = None


@attrs.frozen
class Measurements:
    """What the measuring run took: ``setup_seconds`` (the dataset stage, and the baseline
    evaluation when the config runs one), ``load_seconds`` (training time outside the
    steps: loading, export), ``eval_seconds`` (the whole evaluation, from one batch per
    split) and each phase's timing."""

    device: str
    setup_seconds: float
    load_seconds: float
    eval_seconds: float
    phases: tuple[PhaseTiming, ...]
    # The config has training.phases: each budget counts from its phase's start, even
    # where one phase is left to plan.
    phased: bool = False


@attrs.frozen
class PhaseBudget:
    """A phase's share of the session (``seconds``, its first step and its checkpoint
    saves included), the steps that fit in it, and the steps it takes: its configured
    steps, or as many as fit when it asks for more; None when ``training.epochs`` decides
    (the budget still stops it). ``saves``: the checkpoints written every
    ``checkpoint_every`` steps before the last step (whose save the load + export row
    holds), each taking the measured save seconds."""

    trainer: str
    steps: int | None
    fits: int
    seconds: float
    checkpoint_every: int
    saves: int
    # What the phase's training.time_budget is set to: it counts from the phase's start
    # (from the run's start for a single training) and keeps its reserve_fraction free.
    time_budget_seconds: float


@attrs.frozen
class SessionPlan:
    hours: float
    margin_seconds: float
    max_loss_seconds: float
    measurements: Measurements
    phases: tuple[PhaseBudget, ...]

    @property
    def total_seconds(self) -> float:
        return self.hours * 3600

    @property
    def planned_seconds(self) -> float:
        """The sum of every budget but the margin's, which :meth:`rows` adds."""
        m = self.measurements
        training = sum(p.seconds for p in self.phases)
        return m.setup_seconds + m.load_seconds + training + m.eval_seconds

    def rows(self) -> list[tuple[str, str, float]]:
        """(stage, detail, seconds) in the order the run spends them."""
        m = self.measurements
        rows = [("dataset + baseline", "measured", m.setup_seconds),
                ("model load + export", "measured", m.load_seconds)]  # fmt: skip
        for index, (phase, timing) in enumerate(zip(self.phases, m.phases, strict=True), 1):
            asked = (
                f"{phase.steps} steps" if phase.steps is not None else f"epochs {timing.epochs:g}"
            )
            detail = (f"{asked}, {phase.fits} fit at {timing.step_seconds:.3g}s + first step "
                      f"{timing.first_step_seconds:.3g}s; checkpoint every {phase.checkpoint_every}, "
                      f"{_saves(phase, timing)}")  # fmt: skip
            rows.append((f"train {index}: {phase.trainer}", detail, phase.seconds))
        rows.append(("evaluate", "measured per batch", m.eval_seconds))
        rows.append(("margin", "export, judges' path gate, package", self.margin_seconds))
        return rows


def _saves(phase: PhaseBudget, timing: PhaseTiming) -> str:
    if timing.save_seconds is None:
        return "save not measured"
    total = phase.saves * timing.save_seconds
    return f"{phase.saves} saves x {timing.save_seconds:.3g}s = {total / 60:.1f} min"


def _duration(seconds: float) -> str:
    """Whole seconds as a ``training.time_budget`` string, e.g. ``"8h15m3s"``."""
    whole = max(1, math.floor(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "1s"


def check_hours(hours: float) -> float:
    if not hours > 0 or not math.isfinite(hours):
        raise ConfigError(f"--hours: must be a positive number of hours, got {hours}")
    return hours


def check_durations(margin_seconds: float | None, max_loss_seconds: float) -> None:
    if margin_seconds is not None and margin_seconds < 0:
        raise ConfigError(f"--margin: must not be negative, got {margin_seconds:g}s")
    if not max_loss_seconds > 0:
        raise ConfigError(f"--max-loss: must be a positive duration, got {max_loss_seconds:g}s")


def make_plan(measurements: Measurements, *, hours: float, margin_seconds: float,
              max_loss_seconds: float) -> SessionPlan:  # fmt: skip
    """Share what the session leaves after setup, loading, evaluation and the margin among
    the phases, in the proportion of the time their configured steps take; a phase takes
    its configured steps, or as many as fit in its share beside a checkpoint save every
    ``checkpoint_every`` steps. Raises a ConfigError when ``hours`` cannot hold one step
    of every phase."""
    check_hours(hours)
    check_durations(margin_seconds, max_loss_seconds)
    m = measurements
    fixed = m.setup_seconds + m.load_seconds + m.eval_seconds + margin_seconds
    fixed += sum(t.first_step_seconds for t in m.phases)
    smallest = fixed + sum(t.step_seconds for t in m.phases)
    if hours * 3600 < smallest:
        raise ConfigError(f"--hours: {hours:g} h is below the measured minimum of "
                          f"{smallest / 3600:.3g} h (one step of every phase, the evaluation "
                          f"and a {margin_seconds:.0f}s margin on {m.device})")  # fmt: skip
    available = hours * 3600 - fixed
    weights = [t.configured_steps * t.step_seconds for t in m.phases]
    budgets = []
    for timing, weight in zip(m.phases, weights, strict=True):
        share = available * weight / sum(weights)
        lose_at_most = max(1, math.floor(max_loss_seconds / timing.step_seconds))
        save_seconds = timing.save_seconds or 0.0
        # Every lose_at_most steps pay one save: spread over them, it lengthens each step.
        fits = max(1, math.floor(share / (timing.step_seconds + save_seconds / lose_at_most)))
        steps = None if timing.epochs is not None else min(timing.configured_steps, fits)
        seconds = timing.first_step_seconds + share
        # A single training's budget counts from the run's start, which the setup precedes.
        from_run_start = len(m.phases) == 1 and not m.phased
        counted = seconds + (m.setup_seconds + m.load_seconds if from_run_start else 0.0)
        taken = steps or fits
        cadence = min(taken, lose_at_most)
        budgets.append(PhaseBudget(
            trainer=timing.trainer, steps=steps, fits=fits, seconds=seconds,
            checkpoint_every=cadence, saves=(taken - 1) // cadence,
            time_budget_seconds=counted / (1 - timing.reserve_fraction),
        ))  # fmt: skip
    return SessionPlan(hours, margin_seconds, max_loss_seconds, m, tuple(budgets))


def _deep_copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_deep_copy(v) for v in data]
    return data


def _section(data: dict[str, Any], name: str) -> dict[str, Any]:
    section = data.setdefault(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{name}: must be a mapping, got {type(section).__name__}")
    return section


def measuring_config(
    data: Mapping[str, Any], config: RunConfig, output_dir: Path
) -> dict[str, Any]:
    """``data`` cut down to a measurement: :data:`MEASURE_STEPS` steps of every phase,
    no baseline, one evaluation batch per split, no packaging, no loggers."""
    result: dict[str, Any] = _deep_copy(data)
    run = _section(result, "run")
    run.update(output_dir=str(output_dir), name="plan-measure")
    short = {"steps": MEASURE_STEPS, "epochs": None, "time_budget": None, "log_every": 1,
             "checkpoint_every": MEASURE_STEPS}  # fmt: skip
    training = _section(result, "training")
    training.update(short)
    training["phases"] = [{**phase, **short} for phase in training.get("phases") or []]
    one_batch = min(config.eval.limit or config.eval.batch_size, config.eval.batch_size)
    _section(result, "eval").update(baseline=False, limit=one_batch, ood_limit=one_batch)
    _section(result, "package")["enabled"] = False
    # The measurement is no run of the user's: nothing goes to their loggers.
    _section(result, "logging").update(tensorboard=False, wandb=False)
    return result


def _step_times(metrics_path: Path) -> tuple[float, float]:
    """(first step's seconds, median seconds of the steps after it) from a metrics.jsonl
    whose lines carry ``elapsed_seconds`` (training time so far)."""
    elapsed = []
    for line in metrics_path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "step" in record and "elapsed_seconds" in record:
            elapsed.append(float(record["elapsed_seconds"]))
    if len(elapsed) < 2:
        raise ConfigError(f"{metrics_path}: the measuring run logged {len(elapsed)} step(s), "
                          "too few to time a step")  # fmt: skip
    later = [b - a for a, b in itertools.pairwise(elapsed)]
    return elapsed[0], max(statistics.median(later), 1e-6)


def _save_seconds(metrics_path: Path, checkpoints_dir: Path) -> float | None:
    """The seconds of the measuring run's last checkpoint save, from file times: the
    trainer flushes the metrics just before it saves, and the save's files are the newest
    under ``checkpoints_dir`` (a folder per step). None where there is no checkpoint, or
    where the metrics were written after it (a trainer that flushes them elsewhere)."""
    saved = [p.stat().st_mtime for p in checkpoints_dir.glob("*/**/*") if p.is_file()]
    if not saved or not metrics_path.is_file():
        return None
    seconds = max(saved) - metrics_path.stat().st_mtime
    return seconds if seconds >= 0 else None


def _stage_seconds(manifest: Mapping[str, Any], stage: str) -> float:
    return float(manifest["stages"][stage].get("seconds") or 0.0)


def read_measurements(run_dir: Path, config: RunConfig) -> Measurements:
    """The :class:`Measurements` of a measuring run in ``run_dir`` for the full ``config``."""
    layout = RunLayout(run_dir)
    manifest = json.loads(layout.manifest_path.read_text(encoding="utf-8"))
    phases = phase_configs(config) or [config]
    timings = []
    for index, phase in enumerate(phases, 1):
        last = index == len(phases)
        folder = run_dir if last else run_dir / PHASES / phase_dir_name(index, phase.trainer.name)
        first, step = _step_times(folder / METRICS)
        reserve = phase.trainer.options.get("reserve_fraction", DEFAULT_RESERVE_FRACTION)
        timings.append(PhaseTiming(phase.trainer.name, first, step, phase.training.steps,
                                   float(reserve), phase.training.epochs,
                                   _save_seconds(folder / METRICS, folder / CHECKPOINTS)))  # fmt: skip
    stepping = sum(t.first_step_seconds + (MEASURE_STEPS - 1) * t.step_seconds for t in timings)
    eval_batch = _stage_seconds(manifest, "evaluate")
    limit = config.eval.limit
    eval_items = limit if limit is not None else _eval_items(manifest)
    eval_seconds = eval_batch * math.ceil(eval_items / config.eval.batch_size)
    setup = _stage_seconds(manifest, "dataset") + (eval_seconds if config.eval.baseline else 0.0)
    environment = manifest.get("environment") or {}
    return Measurements(
        device=f"{environment.get('device_count', '?')} x {environment.get('accelerator', '?')}",
        setup_seconds=setup,
        load_seconds=max(_stage_seconds(manifest, "train") - stepping, 0.0),
        eval_seconds=eval_seconds,
        phases=tuple(timings),
        phased=bool(config.training.phases),
    )


def _eval_items(manifest: Mapping[str, Any]) -> int:
    detail = manifest["stages"]["dataset"].get("detail") or {}
    return max(int(detail.get("eval_items") or 1), 1)


def measure(data: Mapping[str, Any], source: Path, host: PluginHost,
            echo: Callable[[str], None]) -> Measurements:  # fmt: skip
    """Run the measurement of the config ``data`` (read from ``source``) in a temporary
    directory."""
    config = structure_config(data, str(source))
    with tempfile.TemporaryDirectory(prefix="tunix-plan-") as scratch:
        run_dir = api.run(measuring_config(data, config, Path(scratch)), stop_after="evaluate",
                          echo=lambda line: echo(f"  {line}") if line.startswith("[") else None,
                          host=host, command=["tunix", "plan", str(source)])  # fmt: skip
        return read_measurements(run_dir, config)


def planned_config(data: Mapping[str, Any], plan: SessionPlan,
                   phase_indexes: Sequence[int] | None = None) -> dict[str, Any]:  # fmt: skip
    """``data`` with the plan's budgets in ``training`` (or in each of its phases).
    ``phase_indexes``: a resumed run's unfinished phases (0-based), which the plan's
    budgets are for; they keep their steps (the run goes on towards them) and get this
    session's ``time_budget`` and ``checkpoint_every``."""
    result: dict[str, Any] = _deep_copy(data)
    training = _section(result, "training")
    resuming = phase_indexes is not None

    def fields(budget: PhaseBudget) -> dict[str, Any]:
        planned = {"checkpoint_every": budget.checkpoint_every,
                   "time_budget": _duration(budget.time_budget_seconds)}  # fmt: skip
        if budget.steps is None or resuming:  # epochs or the run's targets decide
            return planned
        return {"steps": budget.steps, "epochs": None, **planned}

    phases = training.get("phases")
    if phases:
        indexes = list(range(len(phases))) if phase_indexes is None else list(phase_indexes)
        for index, budget in zip(indexes, plan.phases, strict=True):
            phases[index] = {**phases[index], **fields(budget)}
    else:
        training.update(fields(plan.phases[0]))
    return result


def check_week(weekly_hours: float | None, used_hours: float | None) -> None:
    if weekly_hours is None:
        if used_hours is not None:
            raise ConfigError("--used-hours: counts against --weekly-hours; give that too")
        return
    if not weekly_hours > 0 or not math.isfinite(weekly_hours):
        raise ConfigError(f"--weekly-hours: must be a positive number of hours, got {weekly_hours}")
    if used_hours is not None and (not used_hours >= 0 or not math.isfinite(used_hours)):
        raise ConfigError(f"--used-hours: must be a number of hours from 0, got {used_hours}")


def session_hours(hours: float, weekly_hours: float | None, used_hours: float,
                  used_source: str) -> float:  # fmt: skip
    """``hours``, or what the week has left when that is less; a ConfigError naming
    ``--weekly-hours`` when nothing is left."""
    if weekly_hours is None:
        return hours
    left = weekly_hours - used_hours
    if left <= 0:
        raise ConfigError(f"--weekly-hours: {used_hours:.3g} h of the {weekly_hours:g} h week "
                          f"are used ({used_source}); none is left")  # fmt: skip
    return min(hours, left)


def recorded_hours(run_dir: Path) -> float:
    """The hours ``run_dir``'s stages have taken so far, over all its sessions."""
    manifest = json.loads(RunLayout(run_dir).manifest_path.read_text(encoding="utf-8"))
    return sum(_stage_seconds(manifest, stage) for stage in manifest["stages"]) / 3600


def unfinished_phases(run_dir: Path, config: RunConfig) -> list[int]:
    """The 0-based phases of ``config`` (one for a single training) that ``run_dir`` has
    not finished: a phase before the last is done once its model is written, the last
    (or only) one once the train stage is."""
    manifest = json.loads(RunLayout(run_dir).manifest_path.read_text(encoding="utf-8"))
    if manifest["stages"]["train"].get("status") == "done":
        return []
    phases = phase_configs(config) or [config]
    done = [
        RunLayout(run_dir / PHASES / phase_dir_name(index, phase.trainer.name)).phase_record_path.is_file()
        for index, phase in enumerate(phases[:-1], 1)
    ]  # fmt: skip
    return [index for index in range(len(phases)) if index == len(phases) - 1 or not done[index]]


def planned_training_hours(config: RunConfig) -> float | None:
    """The training time a run's config plans: its ``time_budget``s less the trainers'
    reserve; None where a phase has no budget."""
    total = 0.0
    for phase in phase_configs(config) or [config]:
        budget = phase.training.time_budget_seconds
        if budget is None:
            return None
        reserve = phase.trainer.options.get("reserve_fraction", DEFAULT_RESERVE_FRACTION)
        total += budget * (1 - float(reserve))
    return total / 3600


def render_table(plan: SessionPlan) -> list[str]:
    lines = [f"plan for {plan.hours:g} h on {plan.measurements.device}:"]
    for stage, detail, seconds in plan.rows():
        lines.append(f"  {stage:<22} {seconds / 60:9.1f} min  {detail}")
    total = plan.planned_seconds + plan.margin_seconds
    lines.append(f"  {'total':<22} {total / 60:9.1f} min  of {plan.total_seconds / 60:.1f} min")
    return lines


def write_plan(path: Path, data: Mapping[str, Any], plan: SessionPlan, source: Path,
               phase_indexes: Sequence[int] | None = None) -> None:  # fmt: skip
    """The planned config as YAML, headed by the table as comments; validated first, so
    a plan that would not load is never written. For a resumed run (``phase_indexes``,
    see :func:`planned_config`) ``path`` is the run's config.yaml."""
    planned = planned_config(data, plan, phase_indexes)
    structure_config(planned, str(path))
    if phase_indexes is None:
        header = [f"# tunix plan -c {source} --hours {plan.hours:g}: run it with "
                  f"tunix run -c {path}"]  # fmt: skip
    else:
        header = [f"# tunix plan --resume {source} --hours {plan.hours:g}: run it with "
                  f"tunix run --resume {source}"]  # fmt: skip
    header += [f"# {line}" for line in render_table(plan)]
    text = "\n".join(header) + "\n" + yaml.safe_dump(planned, sort_keys=False)
    path.write_text(text, encoding="utf-8")


def plan_session(config_path: Path, *, hours: float, margin_seconds: float | None,
                 max_loss_seconds: float, out: Path, host: PluginHost,
                 echo: Callable[[str], None], weekly_hours: float | None = None,
                 used_hours: float | None = None) -> SessionPlan:  # fmt: skip
    """Check the input, measure, plan the session (within the week's quota) and write
    ``out``; returns the plan."""
    check_hours(hours)
    check_durations(margin_seconds, max_loss_seconds)
    check_week(weekly_hours, used_hours)
    source = "--used-hours" if used_hours is not None else "--used-hours not given"
    hours = _within_week(hours, weekly_hours, used_hours or 0.0, source, echo)
    data = load_yaml(config_path)
    structure_config(data, str(config_path))
    echo(f"measuring {config_path} ({MEASURE_STEPS} steps of every phase, one eval batch)")
    measurements = measure(data, config_path, host, echo)
    margin = margin_seconds if margin_seconds is not None else default_margin(hours)
    plan = make_plan(measurements, hours=hours, margin_seconds=margin,
                     max_loss_seconds=max_loss_seconds)  # fmt: skip
    write_plan(out, data, plan, config_path)
    for line in render_table(plan):
        echo(line)
    echo(f"wrote {out}: tunix run -c {out}")
    return plan


def _within_week(hours: float, weekly_hours: float | None, used_hours: float, used_source: str,
                 echo: Callable[[str], None]) -> float:  # fmt: skip
    session = session_hours(hours, weekly_hours, used_hours, used_source)
    if weekly_hours is not None:
        echo(f"week: {used_hours:.3g} h of {weekly_hours:g} h used ({used_source}); "
             f"planning {session:.3g} h of the {hours:g} asked")  # fmt: skip
    return session


def plan_resumed(run_dir: Path, *, hours: float, margin_seconds: float | None,
                 max_loss_seconds: float, host: PluginHost, echo: Callable[[str], None],
                 weekly_hours: float | None = None,
                 used_hours: float | None = None) -> SessionPlan | None:  # fmt: skip
    """Plan this session of the run in ``run_dir``: its unfinished phases share ``hours``
    (or what the week has left, counting the hours the run records unless ``used_hours``
    says otherwise), and their budgets go into the run's config.yaml, the old one kept as
    config.before-plan-N.yaml. Says in one line when the run has already trained past
    the budget its config plans. A run that has finished training needs no plan: it says
    so and returns None."""
    check_hours(hours)
    check_durations(margin_seconds, max_loss_seconds)
    check_week(weekly_hours, used_hours)
    layout = RunLayout(run_dir)
    if not layout.manifest_path.is_file():
        raise ConfigError(f"--resume: {run_dir} is not a run directory "
                          f"(no {layout.manifest_path.name})")  # fmt: skip
    config_path = layout.config_path
    data = move_old_fields(load_yaml(config_path))
    config = structure_config(data, str(config_path))
    remaining = unfinished_phases(run_dir, config)
    if not remaining:
        echo(f"{run_dir} has finished training: nothing to plan (tunix run --resume "
             f"{run_dir} finishes its other stages)")  # fmt: skip
        return None
    recorded = recorded_hours(run_dir)
    planned = planned_training_hours(config)
    manifest = json.loads(layout.manifest_path.read_text(encoding="utf-8"))
    trained = _stage_seconds(manifest, "train") / 3600
    if planned is not None and trained >= planned:
        echo(f"{run_dir}: resumed past its planned budget: training took {trained:.3g} h of "
             f"the {planned:.3g} h its config plans; this plan gives it another session")  # fmt: skip
    if used_hours is None:
        used, source = recorded, f"recorded in {layout.manifest_path.name}"
    else:
        used, source = used_hours, "--used-hours"
    hours = _within_week(hours, weekly_hours, used, source, echo)
    echo(f"measuring {config_path} ({MEASURE_STEPS} steps of every phase, one eval batch)")
    measured = measure(data, config_path, host, echo)
    measured = attrs.evolve(measured, phases=tuple(measured.phases[i] for i in remaining),
                            phased=bool(config.training.phases))  # fmt: skip
    margin = margin_seconds if margin_seconds is not None else default_margin(hours)
    plan = make_plan(measured, hours=hours, margin_seconds=margin,
                     max_loss_seconds=max_loss_seconds)  # fmt: skip
    # Validated before the run's config is touched.
    structure_config(planned_config(data, plan, remaining), str(config_path))
    kept = _keep_aside(config_path)
    write_plan(config_path, data, plan, run_dir, remaining)
    for line in render_table(plan):
        echo(line)
    echo(f"wrote {config_path} (the one it replaces is {kept.name}): tunix run --resume {run_dir}")
    return plan


def _keep_aside(config_path: Path) -> Path:
    """Copy ``config_path`` to the first free ``config.before-plan-N.yaml`` beside it."""
    number = 1
    while (kept := config_path.with_name(f"config.before-plan-{number}.yaml")).exists():
        number += 1
    kept.write_bytes(config_path.read_bytes())
    return kept


def default_margin(hours: float) -> float:
    """5 % of the session for export, the judges' path gate and packaging."""
    return 0.05 * hours * 3600
