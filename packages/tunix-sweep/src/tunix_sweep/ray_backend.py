"""The Ray backend (``tunix sweep --backend ray``, extra ``tunix-sweep[ray]``): Ray Tune
schedules the trials on a cluster (``ray.init(address=...)``, or a local instance) while
``ray.tune.search.optuna.OptunaSearch`` asks the same seeded sampler, writing into the same
SQLite study as the local backend, so results have the same shape.

Each trial is the same ``tunix run`` subprocess as locally, started by a Ray worker; its
run directory is written under the sweep folder, which on a multi-node cluster must be on
a filesystem every node shares. Pruning is Ray's ``MedianStoppingRule`` on the sweep's
``prune_on`` metric (the training loss by default). This module imports Ray at the top:
import it only for ``--backend ray``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import optuna
import ray
from ray import tune
from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from tunix_core.layout import RunLayout
from tunix_sweep import study as studies
from tunix_sweep.spec import Sweep, run_objective
from tunix_sweep.trial import TrialFailed, run_trial, trial_dir

TRIAL_KEY = "__tunix_trial"  # the Optuna trial number, passed to the trainable
RESUME_KEY = "__tunix_resume"  # the run directory a retried trial resumes, or None
OBJECTIVE = "objective"
INTERMEDIATE = "intermediate"  # a step's prune_on metric, as reported to Tune


class _SweepSearch(OptunaSearch):  # type: ignore[misc, unused-ignore]
    """OptunaSearch that also hands the trainable its Optuna trial number (run names and
    markers use it) and a retry's run directory, reports the ``prune_on`` metric as the
    trial's intermediate value (not the objective) and records each trial's run
    directory, as the local backend does."""

    def __init__(self, sweep: Sweep, sweep_dir: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._sweep = sweep
        self._sweep_dir = sweep_dir
        self._carried: dict[str, set[int]] = {}  # steps a retry kept from the killed trial

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        config: dict[str, Any] | None = super().suggest(trial_id)
        if config is None:
            return None
        ot_trial = self._ot_trials[trial_id]
        study = cast(optuna.Study, self._ot_study)  # set up by OptunaSearch before any suggest
        previous = studies.retried_trial(study, ot_trial.user_attrs)
        resume = studies.resume_dir(previous, self._sweep_dir)
        if previous is not None:
            for step, value in previous.intermediate_values.items():
                ot_trial.report(value, step)
            self._carried[trial_id] = set(previous.intermediate_values)
        return {**config, TRIAL_KEY: ot_trial.number, RESUME_KEY: resume and str(resume)}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is None:
            return
        if result.get("run_dir"):
            ot_trial.set_user_attr(studies.RUN_DIR, studies.recorded_run_dir(Path(result["run_dir"])))
        step = int(result.get("step", 0))
        value = result.get(INTERMEDIATE)
        carried = self._carried.get(trial_id, ())
        if OBJECTIVE not in result and value is not None and step not in carried:
            ot_trial.report(studies.intermediate_value(value, self._sweep.spec), step)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:  # fmt: skip
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and result and result.get("run_dir"):
            ot_trial.set_user_attr(studies.RUN_DIR, studies.recorded_run_dir(Path(result["run_dir"])))
        super().on_trial_complete(trial_id, result, error)


def _trainable(config: dict[str, Any], setup: dict[str, Any]) -> None:
    """One trial on a Ray worker: the run in a subprocess, the ``prune_on`` metric of each
    step that has it reported to Tune (which may stop it), then the objective."""
    sweep: Sweep = setup["sweep"]
    sweep_dir = Path(setup["sweep_dir"])
    number = int(config[TRIAL_KEY])
    params = {field: config[field] for field in sweep.spec.space}
    resume = Path(config[RESUME_KEY]) if config[RESUME_KEY] else None
    state: dict[str, Any] = {"run_dir": str(resume) if resume else None, "step": 0,
                             INTERMEDIATE: None}  # fmt: skip

    def on_run_dir(path: Path) -> None:
        state["run_dir"] = str(path)

    def on_step(step: int, metrics: dict[str, float]) -> bool:
        value = metrics.get(sweep.spec.prune_on)
        if value is not None:  # an eval metric is there only on the steps evaluated
            state.update({"step": step, INTERMEDIATE: value})
            tune.report(dict(state))
        return False  # Tune's scheduler stops the trial itself

    outcome = run_trial(
        sweep_id=sweep.name, number=number, folder=trial_dir(sweep_dir, number),
        config=None if resume else studies.trial_config(sweep, sweep_dir, number, params),
        resume=resume, on_step=on_step, on_run_dir=on_run_dir, cwd=Path(setup["cwd"]),
    )  # fmt: skip
    if outcome.returncode != 0 or outcome.run_dir is None:
        raise TrialFailed(outcome.failure())
    value = run_objective(RunLayout(outcome.run_dir).summary_path, sweep.spec.objective)
    tune.report({**state, "run_dir": str(outcome.run_dir), OBJECTIVE: value})


def _scheduler(sweep: Sweep) -> TrialScheduler:
    spec = sweep.spec
    if spec.pruner == "none":
        return FIFOScheduler()  # type: ignore[no-untyped-call, unused-ignore]
    mode = "max" if spec.prune_mode == "maximize" else "min"
    return MedianStoppingRule(
        time_attr="step", metric=INTERMEDIATE, mode=mode, grace_period=spec.pruner_warmup_steps,
        min_samples_required=max(1, spec.pruner_startup_trials),
    )  # fmt: skip


def run_ray(sweep: Sweep, sweep_dir: Path, study: optuna.Study, *, address: str | None,
            echo: Callable[[str], None]) -> None:  # fmt: skip
    """Run the trials the sweep still needs on Ray; the study (SQLite) records them."""
    spec = sweep.spec
    remaining = spec.trials - studies.counted(study)
    budget = spec.time_budget_seconds
    left = None if budget is None else budget - studies.seconds_spent(study)
    if remaining <= 0 or (left is not None and left <= 0):
        return
    # Intermediate results carry the prune_on metric; only the last carries the objective.
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    ray.init(address=address, ignore_reinit_error=True, include_dashboard=False,
             logging_level=logging.WARNING, log_to_driver=False)  # fmt: skip
    echo(f"ray: {remaining} trial(s) to run")
    search = _SweepSearch(
        sweep, sweep_dir, space=studies.distributions(spec), metric=OBJECTIVE,
        mode="max" if spec.direction == "maximize" else "min",
        sampler=studies.make_sampler(spec, len(study.trials)), study_name=sweep.name,
        storage=optuna.storages.RDBStorage(studies.storage_url(sweep_dir)),
    )  # fmt: skip
    trainable = tune.with_parameters(
        _trainable, setup={"sweep": sweep, "sweep_dir": str(sweep_dir.resolve()),
                           "cwd": str(Path.cwd())},
    )  # fmt: skip
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search, scheduler=_scheduler(sweep), num_samples=remaining,
            max_concurrent_trials=spec.concurrent_trials, time_budget_s=left,
        ),
        run_config=tune.RunConfig(
            name="ray", storage_path=str(sweep_dir.resolve()), verbose=0,
            failure_config=tune.FailureConfig(fail_fast=False),
        ),
    )  # fmt: skip
    tuner.fit()
