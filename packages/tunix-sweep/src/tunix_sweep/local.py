"""The local backend: Optuna's ask/tell loop on this machine, one trial at a time."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tunix_core.errors import ConfigError
from tunix_core.layout import RunLayout
from tunix_sweep import study as studies
from tunix_sweep.spec import Sweep, run_objective
from tunix_sweep.trial import TrialFailed, run_trial, trial_dir


def run_local(sweep: Sweep, sweep_dir: Path, study: optuna.Study, *, echo: Callable[[str], None],
              after_trial: Callable[[], object]) -> None:  # fmt: skip
    """Run trials until the sweep has ``trials`` ended ones or its time budget is spent;
    ``after_trial`` runs after each (it rewrites the summary)."""
    spec = sweep.spec
    budget = spec.time_budget_seconds
    while studies.counted(study) < spec.trials:
        if budget is not None and studies.seconds_spent(study) >= budget:
            echo(f"time budget {spec.time_budget} spent; no more trials start")
            return
        _one_trial(sweep, sweep_dir, study, echo)
        after_trial()


def _one_trial(sweep: Sweep, sweep_dir: Path, study: optuna.Study, echo: Callable[[str], None]) -> None:
    spec = sweep.spec
    trial = study.ask(studies.distributions(spec))
    previous = studies.retried_trial(study, trial.user_attrs)
    resume = studies.resume_dir(previous, sweep_dir)
    reported = dict(previous.intermediate_values) if previous is not None else {}
    # The resumed run goes on from its checkpoint: keep the steps reported before, and
    # do not report again the ones it repeats after the checkpoint.
    for step, value in reported.items():
        trial.report(value, step)
    how = f"resuming {resume} of trial {previous.number}" if resume and previous else "new run"
    echo(f"trial {trial.number}: {json.dumps(trial.params)} ({how})")

    last_step = 0

    def on_step(step: int, metrics: dict[str, float]) -> bool:
        nonlocal last_step
        last_step = step
        return studies.report_step(trial, spec, step, metrics, carried=reported)

    def on_run_dir(path: Path) -> None:
        trial.set_user_attr(studies.RUN_DIR, studies.recorded_run_dir(path))

    config = None if resume else studies.trial_config(sweep, sweep_dir, trial.number, trial.params)
    outcome = run_trial(
        sweep_id=sweep.name, number=trial.number, folder=trial_dir(sweep_dir, trial.number),
        config=config, resume=resume, on_step=on_step, on_run_dir=on_run_dir,
    )  # fmt: skip
    if outcome.pruned:
        study.tell(trial, state=TrialState.PRUNED)
        echo(f"trial {trial.number}: pruned at step {last_step}")
        return
    if outcome.returncode != 0 or outcome.run_dir is None:
        _fail(study, trial, outcome.failure(), echo, f"; see {outcome.output_path}")
        return
    try:
        value = run_objective(RunLayout(outcome.run_dir).summary_path, spec.objective)
    except TrialFailed as exc:  # this run has no value (e.g. a rate over no correct answer)
        _fail(study, trial, str(exc), echo)
        return
    except ConfigError as exc:  # the sweep file names a metric the runs do not have
        trial.set_user_attr(studies.ERROR, str(exc))
        study.tell(trial, state=TrialState.FAIL)
        raise
    study.tell(trial, value)
    echo(f"trial {trial.number}: {spec.objective} = {value:.4f} ({outcome.run_dir})")


def _fail(study: optuna.Study, trial: optuna.Trial, error: str, echo: Callable[[str], None],
          see: str = "") -> None:  # fmt: skip
    """Record the trial failed with its reason; the sweep goes on with the next."""
    trial.set_user_attr(studies.ERROR, error)
    study.tell(trial, state=TrialState.FAIL)
    echo(f"trial {trial.number}: failed ({error}){see}")
