"""`tunix sweep show` on an edited, damaged or copied sweep folder: one line naming the
file, nothing written; and the local loop on a run whose objective is null."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from optuna.trial import TrialState

from tunix_core.errors import TunixError
from tunix_core.layout import RunLayout
from tunix_sweep import local, results
from tunix_sweep import study as studies
from tunix_sweep.cli import sweep as sweep_command
from tunix_sweep.spec import Sweep, load_sweep
from tunix_sweep.trial import TrialOutcome

SPACE = {"training.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True}}
OBJECTIVE = "evaluators.trace.answer_in_reasoning_rate"  # null when nothing is correct


def sweep_of(tmp_path: Path, **fields: object) -> Sweep:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"space": SPACE, "trials": 3, "objective": OBJECTIVE, **fields}))
    return load_sweep(path)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def finished_folder(tmp_path: Path, values: tuple[float, ...] = (0.25, 0.75)) -> Path:
    """A sweep folder with a completed trial per value, each with its run directory, and
    its summary.json, as a sweep leaves it."""
    sweep = sweep_of(tmp_path)
    folder = tmp_path / "sweep"
    folder.mkdir()
    study = studies.open_sweep(sweep, folder)
    for value in values:
        trial = study.ask(studies.distributions(sweep.spec))
        run_dir = folder / "runs" / f"s-trial-{trial.number:04d}-1"
        run_dir.mkdir(parents=True)
        trial.set_user_attr(studies.RUN_DIR, studies.recorded_run_dir(run_dir))
        study.tell(trial, value)
    results.write_summary(study, folder, studies.read_definition(folder), backend="local", planned=3)
    return folder


def show(folder: Path, *args: str) -> Result:
    return CliRunner().invoke(sweep_command, ["show", str(folder), *args])


def test_show_prints_the_leaderboard_with_the_run_dirs_of_this_folder(tmp_path: Path):
    original = finished_folder(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    shutil.rmtree(original)
    shown = show(copy, "--json")
    assert shown.exit_code == 0, shown.output
    summary = json.loads(shown.output)
    assert summary["best"]["value"] == 0.75 and summary["trials_planned"] == 3
    assert summary["best"]["run_dir"] == str((copy / "runs" / "s-trial-0001-1").resolve())


def _truncate(folder: Path) -> None:
    db = folder / "study.db"
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def _rename(folder: Path) -> None:
    definition = json.loads((folder / "sweep.json").read_text())
    (folder / "sweep.json").write_text(json.dumps({**definition, "name": "renamed"}))


def _edit_objective(folder: Path) -> None:
    definition = json.loads((folder / "sweep.json").read_text())
    (folder / "sweep.json").write_text(json.dumps({**definition, "objective": "primary_score"}))


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda f: (f / "summary.json").write_text("{broken"),
     r"summary.json: not readable JSON \(Expecting property name"),
    (lambda f: (f / "summary.json").write_text("[]"),
     r"summary.json: expected a JSON object, got list"),
    (lambda f: (f / "summary.json").write_text('{"backend": "local", "trials_planned": "3"}'),
     r"summary.json: not a sweep summary: trials_planned: must be a whole number"),
    (lambda f: (f / "sweep.json").write_text("{broken"), r"sweep.json: not readable JSON"),
    (lambda f: (f / "sweep.json").write_bytes(b"\xff\xfe"), r"sweep.json: not readable JSON"),
    (lambda f: (f / "sweep.json").unlink(), r"not a sweep folder \(no sweep.json\)"),
    (_rename, r"study.db: no study named 'renamed' \(the name in sweep.json\); it holds 's'"),
    (_edit_objective, r"sweep.json: does not match the search study.db recorded \(a different objective\)"),
    (_truncate, r"study.db: cannot read the study \(database disk image is malformed\)"),
    (lambda f: (f / "study.db").write_bytes(b""), r"study.db: empty, not the sweep's study"),
    (lambda f: (f / "study.db").unlink(), r"study.db: missing"),
])  # fmt: skip
def test_show_on_a_damaged_folder_is_one_line_naming_the_file(tmp_path: Path, damage, expected: str):
    folder = finished_folder(tmp_path)
    damage(folder)
    before = files(folder)
    shown = show(folder)
    assert isinstance(shown.exception, TunixError), shown.output
    message = str(shown.exception)
    assert "\n" not in message
    assert re.search(expected, message), message
    assert files(folder) == before  # nothing rewritten, no plot


def test_a_null_objective_fails_its_trial_and_the_sweep_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sweep = sweep_of(tmp_path)
    folder = tmp_path / "sweep"
    folder.mkdir()
    study = studies.open_sweep(sweep, folder)
    rates = iter([None, 0.5, None])  # what each trial's evaluation measured

    def run_trial(*, number: int, folder: Path, on_run_dir, **_: object) -> TrialOutcome:
        """Stands in for `tunix run`: a finished run whose summary has this trial's rate."""
        run = RunLayout(folder.parent.parent / "runs" / f"s-trial-{number:04d}-1")
        run.path.mkdir(parents=True)
        summary = {"primary_score": 0.0, "evaluators": {"trace": {"answer_in_reasoning_rate": next(rates)}}}
        run.summary_path.write_text(json.dumps(summary))
        on_run_dir(run.path)
        folder.mkdir(parents=True)
        (folder / "output.log").write_text("")
        return TrialOutcome(run.path, 0, False, folder / "output.log")

    monkeypatch.setattr(local, "run_trial", run_trial)
    echoed: list[str] = []
    local.run_local(sweep, folder, study, echo=echoed.append, after_trial=lambda: None)
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.FAIL]
    error = study.trials[0].user_attrs[studies.ERROR]
    assert error.startswith(f"objective: '{OBJECTIVE}' in ") and error.endswith(" is null: the run has no value for it")
    assert any(line.startswith("trial 0: failed (objective:") for line in echoed)
    assert study.trials[1].value == 0.5
