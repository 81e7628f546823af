"""The study a sweep folder holds: a killed sweep's running trial is failed and retried,
finished trials are kept, and a folder refuses a different search."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import optuna
import pytest
import yaml
from click.testing import CliRunner
from optuna.trial import TrialState

from tunix_core.errors import ConfigError, TunixError
from tunix_core.layout import RunLayout
from tunix_core.rundir import RunLockedError, run_lock
from tunix_sweep import study as studies
from tunix_sweep.cli import sweep as sweep_command
from tunix_sweep.spec import MAX_SEED, Sweep, load_sweep

SPACE = {"training.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}}


def sweep_file(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"space": SPACE, "trials": 3, **fields}))
    return path


def sweep_of(tmp_path: Path, **fields: object) -> Sweep:
    return load_sweep(sweep_file(tmp_path, **fields))


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def killed_trial_folder(tmp_path: Path, sweep: Sweep) -> tuple[Path, Path]:
    """A sweep folder whose trial 0 was running (with a run directory) when the sweep died."""
    folder = tmp_path / "sweep"
    folder.mkdir()
    study = studies.open_sweep(sweep, folder)
    killed = study.ask(studies.distributions(sweep.spec))
    run_dir = folder / "runs" / "s-trial-0000-1"
    run_dir.mkdir(parents=True)
    (run_dir / "run_manifest.json").write_text("{}")
    killed.set_user_attr(studies.RUN_DIR, studies.recorded_run_dir(run_dir))
    return folder, run_dir


def test_a_running_trial_of_a_dead_sweep_is_failed_and_retried_with_its_run(tmp_path: Path):
    sweep = sweep_of(tmp_path)
    folder = tmp_path / "sweep"
    folder.mkdir()
    study = studies.open_sweep(sweep, folder)
    finished = study.ask(studies.distributions(sweep.spec))
    study.tell(finished, 0.5)
    killed = study.ask(studies.distributions(sweep.spec))
    killed.report(-1.0, 1)
    run_dir = folder / "runs" / "killed-run"
    run_dir.mkdir(parents=True)
    (run_dir / "run_manifest.json").write_text("{}")
    killed.set_user_attr(studies.RUN_DIR, studies.recorded_run_dir(run_dir))

    # The run's last file is stamped 30 s after the trial started: its time is read from
    # there, not from the clock when a later sweep finds it dead.
    started = study.trials[killed.number].datetime_start.timestamp()
    os.utime(run_dir / "run_manifest.json", (started + 30, started + 30))

    # What the next `tunix sweep` sees: the same SQLite study, the trial still RUNNING.
    reopened = studies.open_sweep(sweep, folder)
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
    assert studies.resume_dir(previous, folder) == run_dir.resolve()
    assert previous.intermediate_values == {1: -1.0}
    assert reopened.trials[finished.number].state == TrialState.COMPLETE


def test_a_sweep_folder_refuses_a_different_search_but_not_more_trials(tmp_path: Path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    studies.open_sweep(sweep_of(tmp_path), folder)
    studies.open_sweep(sweep_of(tmp_path, trials=10, time_budget="1h"), folder)
    with pytest.raises(ConfigError, match=r"holds a sweep with a different direction, objective;"):
        studies.open_sweep(
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


def test_a_seed_near_the_top_still_seeds_a_resumed_sweep(tmp_path: Path):
    sweep = sweep_of(tmp_path, seed=MAX_SEED)
    for already in (0, 1, 7):  # the first run, and reruns after trials were done
        study = optuna.create_study(sampler=studies.make_sampler(sweep.spec, already))
        assert 1e-4 <= study.ask(studies.distributions(sweep.spec)).params["training.learning_rate"] <= 1e-2


def test_a_refused_seed_leaves_no_sweep_folder(tmp_path: Path):
    out = tmp_path / "sweep"
    result = CliRunner().invoke(sweep_command, ["-c", str(sweep_file(tmp_path, seed=-1)), "--out", str(out)])
    assert isinstance(result.exception, ConfigError) and "seed: must be between" in str(result.exception)
    assert not out.exists()


def test_a_second_sweep_on_a_locked_folder_writes_nothing(tmp_path: Path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    other = tmp_path / "other"
    other.mkdir()
    with run_lock(RunLayout(folder), "tunix sweep"):  # the first sweep, starting
        result = CliRunner().invoke(
            sweep_command, ["-c", str(sweep_file(other, direction="minimize")), "--out", str(folder)]
        )  # fmt: skip
    assert isinstance(result.exception, RunLockedError), result.output
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # no sweep.json, no study.db


def test_a_copied_sweep_folder_resumes_its_own_runs(tmp_path: Path):
    sweep = sweep_of(tmp_path)
    original, original_run = killed_trial_folder(tmp_path, sweep)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)  # whatever the copy does, it must not need the original
    study = studies.open_sweep(sweep, copy)
    assert studies.recover_interrupted(study, copy) == [0]
    retry = study.ask(studies.distributions(sweep.spec))
    previous = studies.retried_trial(study, retry.user_attrs)
    assert studies.resume_dir(previous, copy) == (copy / "runs" / original_run.name).resolve()


def test_an_absolute_run_dir_an_earlier_version_recorded_is_read_in_this_folder(tmp_path: Path):
    sweep = sweep_of(tmp_path)
    folder, run_dir = killed_trial_folder(tmp_path, sweep)
    study = studies.open_sweep(sweep, folder)
    study._storage.set_trial_user_attr(study.trials[0]._trial_id, studies.RUN_DIR,
                                       f"/elsewhere/sweep/runs/{run_dir.name}")  # fmt: skip
    assert studies.trial_run_dir(study.trials[0], folder) == run_dir.resolve()


def test_a_deleted_sweep_json_does_not_let_another_search_continue_the_study(tmp_path: Path):
    sweep = sweep_of(tmp_path)
    folder, _ = killed_trial_folder(tmp_path, sweep)
    (folder / "sweep.json").unlink()
    before = files(folder)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(ConfigError, match=r"study.db: holds a sweep with a different direction;"):
        studies.open_sweep(sweep_of(other, direction="minimize"), folder)
    assert files(folder) == before
    studies.open_sweep(sweep, folder)  # the same search continues, and writes sweep.json again
    assert json.loads((folder / "sweep.json").read_text()) == json.loads(json.dumps(sweep.definition()))


def test_a_folder_whose_study_is_lost_or_renamed_is_refused_not_restarted(tmp_path: Path):
    sweep = sweep_of(tmp_path)
    folder, _ = killed_trial_folder(tmp_path, sweep)
    renamed = sweep_of(tmp_path, name="renamed")
    (folder / "sweep.json").unlink()
    with pytest.raises(ConfigError, match=r"study.db: holds the study 's', not 'renamed'"):
        studies.open_sweep(renamed, folder)
    (folder / "study.db").unlink()
    before = files(folder)
    with pytest.raises(TunixError, match=r"has trials but no study in study.db"):
        studies.open_sweep(sweep, folder)  # trials/0000 would be overwritten by a new trial 0
    assert files(folder) == before


@pytest.mark.parametrize(("content", "expected"), [
    ("{broken", r"sweep.json: not readable JSON \(Expecting property name"),
    ("[]", r"sweep.json: expected a JSON object, got list"),
    ('{"name": "s"}', r"sweep.json: not a sweep definition: objective:"),
])  # fmt: skip
def test_a_damaged_sweep_json_is_one_line_naming_it(tmp_path: Path, content: str, expected: str):
    sweep = sweep_of(tmp_path)
    folder, _ = killed_trial_folder(tmp_path, sweep)
    (folder / "sweep.json").write_text(content)
    before = files(folder)
    with pytest.raises(TunixError, match=expected) as caught:
        studies.open_sweep(sweep, folder)
    assert "\n" not in str(caught.value)
    assert files(folder) == before


def test_a_damaged_study_db_is_one_line_naming_it(tmp_path: Path):
    sweep = sweep_of(tmp_path)
    folder, _ = killed_trial_folder(tmp_path, sweep)
    db = folder / "study.db"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    before = files(folder)
    with pytest.raises(TunixError, match=r"study.db: cannot read the study \(database disk image is malformed\)"):
        studies.open_sweep(sweep, folder)
    db.write_bytes(b"")
    with pytest.raises(TunixError, match=r"study.db: empty, not the sweep's study"):
        studies.open_sweep(sweep, folder)
    assert files(folder) == {**before, "study.db": b""}
