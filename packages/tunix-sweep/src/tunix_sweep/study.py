"""The Optuna study of a sweep folder, shared by the local and the Ray backends.

A sweep folder holds ``study.db`` (the SQLite study: every trial's parameters, state,
intermediate values and objective), ``sweep.json`` (the search it was started with),
``trials/NNNN/`` (each trial's config, progress and output) and ``runs/`` (the trials'
run directories), plus ``summary.json`` and the plots once written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from tunix_core.errors import ConfigError
from tunix_core.layout import RunLayout
from tunix_sweep.spec import ParamSpec, Sweep, SweepSpec
from tunix_sweep.trial import trial_dir

STUDY_DB = "study.db"
DEFINITION = "sweep.json"
RUNS = "runs"
SUMMARY = "summary.json"

# Trial user attributes.
RUN_DIR = "run_dir"
RETRY_OF = "retry_of"  # the number of the killed trial this one continues
INTERRUPTED = "interrupted"  # RUNNING when its sweep died; failed, and retried
ALIVE_SECONDS = "alive_seconds"  # an interrupted trial's time until its last output
ERROR = "error"

ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def storage_url(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / STUDY_DB).resolve()}"


def distribution(param: ParamSpec) -> BaseDistribution:
    if param.type == "categorical":
        return CategoricalDistribution(list(param.choices or []))
    assert param.low is not None and param.high is not None  # ParamSpec.problem() checked
    if param.type == "int":
        step = 1 if param.step is None else int(param.step)
        return IntDistribution(int(param.low), int(param.high), log=param.log, step=step)
    return FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    return {field: distribution(param) for field, param in spec.space.items()}


def make_sampler(spec: SweepSpec, already: int) -> optuna.samplers.BaseSampler:
    """The seeded sampler; ``already`` (trials in the study) shifts the seed so that a
    resumed sweep does not draw its first trials' random points again."""
    seed = spec.seed + already
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.pruner_startup_trials, n_warmup_steps=spec.pruner_warmup_steps
    )


def intermediate_value(loss: float, spec: SweepSpec) -> float:
    """What a trial reports per step: the training loss, negated when the objective is
    maximised, so that Optuna's pruner (which reads intermediate values in the study's
    direction) always counts a higher loss as worse."""
    return loss if spec.direction == "minimize" else -loss


def prepare_folder(sweep: Sweep, sweep_dir: Path) -> None:
    """Create the sweep folder, or check that it holds this same search: a rerun of the
    same command continues; a changed space, base config or objective is refused."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    definition = json.loads(json.dumps(sweep.definition()))  # tuples -> lists, as saved
    saved_path = sweep_dir / DEFINITION
    if saved_path.is_file():
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        if saved != definition:
            changed = sorted(k for k in {*saved, *definition} if saved.get(k) != definition.get(k))
            raise ConfigError(
                f"{sweep_dir}: holds a sweep with a different {', '.join(changed)}; rerun it "
                "with its own sweep file, or give --out a new folder"
            )
    else:
        saved_path.write_text(json.dumps(definition, indent=2) + "\n", encoding="utf-8")


def direction(spec: SweepSpec) -> optuna.study.StudyDirection:
    maximise = spec.direction == "maximize"
    return optuna.study.StudyDirection.MAXIMIZE if maximise else optuna.study.StudyDirection.MINIMIZE


def open_study(sweep: Sweep, sweep_dir: Path) -> optuna.Study:
    study = optuna.create_study(
        storage=storage_url(sweep_dir), study_name=sweep.name, direction=direction(sweep.spec),
        pruner=make_pruner(sweep.spec), load_if_exists=True,
    )  # fmt: skip
    study.sampler = make_sampler(sweep.spec, len(study.trials))
    return study


def recover_interrupted(study: optuna.Study, sweep_dir: Path) -> list[int]:
    """Trials left RUNNING by a sweep that died: mark each failed and ``interrupted`` and
    queue a retry with the same parameters, which resumes the trial's run directory.
    Returns their numbers. Only call it holding the sweep folder's lock."""
    storage = study._storage  # Optuna has no public call to fail another process's trial
    numbers = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        alive = alive_seconds(trial, sweep_dir)
        if alive is not None:
            storage.set_trial_user_attr(trial._trial_id, ALIVE_SECONDS, alive)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
        numbers.append(trial.number)
    return numbers


def counted(study: optuna.Study) -> int:
    """Trials that ended and count towards ``trials``: interrupted ones are retried instead."""
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=ENDED) if not t.user_attrs.get(INTERRUPTED)
    )


def seconds_spent(study: optuna.Study) -> float:
    """The time the ended trials took, summed over every run of the sweep."""
    return sum(trial_seconds(t) or 0.0 for t in study.get_trials(deepcopy=False, states=ENDED))


def trial_seconds(trial: FrozenTrial) -> float | None:
    if ALIVE_SECONDS in trial.user_attrs:
        return float(trial.user_attrs[ALIVE_SECONDS])
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def alive_seconds(trial: FrozenTrial, sweep_dir: Path) -> float | None:
    """How long a killed trial ran: until the newest file it or its run wrote. The time the
    sweep lay dead before it was restarted is nobody's, and must not eat the budget."""
    if trial.datetime_start is None:
        return None
    folders = [trial_dir(sweep_dir, trial.number)]
    if RUN_DIR in trial.user_attrs:
        folders.append(Path(trial.user_attrs[RUN_DIR]))
    stamps = [f.stat().st_mtime for folder in folders if folder.is_dir()
              for f in folder.rglob("*") if f.is_file()]  # fmt: skip
    if not stamps:
        return 0.0
    return max(0.0, max(stamps) - trial.datetime_start.timestamp())


def retried_trial(study: optuna.Study, user_attrs: Mapping[str, Any]) -> FrozenTrial | None:
    """The killed trial a retry continues, or None for a fresh trial."""
    number = user_attrs.get(RETRY_OF)
    return None if number is None else study.trials[int(number)]


def resume_dir(previous: FrozenTrial | None) -> Path | None:
    """The run directory a retry resumes: the killed trial's, if it got as far as one."""
    if previous is None or RUN_DIR not in previous.user_attrs:
        return None
    path = Path(previous.user_attrs[RUN_DIR])
    return path if RunLayout(path).manifest_path.is_file() else None


def trial_config(sweep: Sweep, sweep_dir: Path, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's run config: the base with its parameters, its run directory under
    ``runs/`` named after the sweep and trial."""
    config = sweep.trial_config(params)
    run = config.setdefault("run", {})
    run["output_dir"] = str((sweep_dir / RUNS).resolve())
    run["name"] = f"{sweep.name}-trial-{number:04d}"
    return config
