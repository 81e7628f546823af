"""The study a sweep folder holds: a killed sweep's running trial is failed and retried,
finished trials are kept, and a folder refuses a different search."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tunix_core.errors import ConfigError
from tunix_sweep import study as studies
from tunix_sweep.spec import Sweep, load_sweep

SPACE = {"training.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}}


def sweep_of(tmp_path: Path, **fields: object) -> Sweep:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"space": SPACE, "trials": 3, **fields}))
    return load_sweep(path)


def test_a_running_trial_of_a_dead_sweep_is_failed_and_retried_with_its_run(tmp_path: Path):
    sweep = sweep_of(tmp_path)
    folder = tmp_path / "sweep"
    studies.prepare_folder(sweep, folder)
    study = studies.open_study(sweep, folder)
    finished = study.ask(studies.distributions(sweep.spec))
    study.tell(finished, 0.5)
    killed = study.ask(studies.distributions(sweep.spec))
    killed.report(-1.0, 1)
    run_dir = tmp_path / "runs" / "killed-run"
    run_dir.mkdir(parents=True)
    (run_dir / "run_manifest.json").write_text("{}")
    killed.set_user_attr(studies.RUN_DIR, str(run_dir))

    # The run's last file is stamped 30 s after the trial started: its time is read from
    # there, not from the clock when a later sweep finds it dead.
    started = study.trials[killed.number].datetime_start.timestamp()
    os.utime(run_dir / "run_manifest.json", (started + 30, started + 30))

    # What the next `tunix sweep` sees: the same SQLite study, the trial still RUNNING.
    reopened = studies.open_study(sweep, folder)
    assert studies.recover_interrupted(reopened, folder) == [killed.number]
    frozen = reopened.trials[killed.number]
    assert frozen.state == TrialState.FAIL and frozen.user_attrs[studies.INTERRUPTED]
    # The budget counts the time it ran, not the time the sweep lay dead.
    assert studies.trial_seconds(frozen) == pytest.approx(30.0, abs=0.01)
    assert studies.counted(reopened) == 1  # the killed trial does not count

    retry = reopened.ask(studies.distributions(sweep.spec))
    assert retry.params == killed.params  # the queued retry, not a new draw
    previous = studies.retried_trial(reopened, retry.user_attrs)
    assert previous is not None and previous.number == killed.number
    assert studies.resume_dir(previous) == run_dir
    assert previous.intermediate_values == {1: -1.0}
    assert reopened.trials[finished.number].state == TrialState.COMPLETE


def test_a_sweep_folder_refuses_a_different_search_but_not_more_trials(tmp_path: Path):
    folder = tmp_path / "sweep"
    studies.prepare_folder(sweep_of(tmp_path), folder)
    studies.prepare_folder(sweep_of(tmp_path, trials=10, time_budget="1h"), folder)
    with pytest.raises(ConfigError, match=r"holds a sweep with a different direction, objective;"):
        studies.prepare_folder(
            sweep_of(tmp_path, direction="minimize", objective="primary_score_stderr"), folder
        )


def test_a_resumed_sweep_samples_from_a_shifted_seed(tmp_path: Path):
    sweep = sweep_of(tmp_path)

    def first_draw(already: int) -> float:
        study = optuna.create_study(sampler=studies.make_sampler(sweep.spec, already))
        value: float = study.ask(studies.distributions(sweep.spec)).params["training.learning_rate"]
        return value

    assert first_draw(0) == first_draw(0)  # seeded
    assert first_draw(0) != first_draw(2)  # a resumed sweep does not redraw trial 0's point


def test_the_pruner_reads_a_higher_loss_as_worse_whichever_the_direction(tmp_path: Path):
    maximise, minimise = sweep_of(tmp_path), sweep_of(tmp_path, direction="minimize")
    assert studies.intermediate_value(2.0, maximise.spec) < studies.intermediate_value(1.0, maximise.spec)
    assert studies.intermediate_value(2.0, minimise.spec) > studies.intermediate_value(1.0, minimise.spec)
