"""`tunix runs list` groups a sweep's trials by the marker the sweep writes into each run."""

from __future__ import annotations

import json
from pathlib import Path

from tunix_core.layout import SWEEP_TRIAL
from tunix_core.rundir import RunDirectory
from tunix_eval.runs import RunRow, format_runs, list_runs


def make_run(root: Path, run_id: str, sweep: str | None = None, trial: int = 0) -> None:
    run = RunDirectory.create(root, run_id, model_id="tiny-gemma3@random", dataset="d",
                              trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip
    if sweep is not None:
        (run.path / SWEEP_TRIAL).write_text(json.dumps({"sweep": sweep, "trial": trial}))


def test_runs_list_puts_each_sweeps_trials_together(tmp_path: Path):
    make_run(tmp_path, "a-trial-1", "b-sweep", 1)
    make_run(tmp_path, "b-plain")
    make_run(tmp_path, "c-trial-0", "a-sweep", 0)
    make_run(tmp_path, "d-trial-0", "b-sweep", 0)
    (tmp_path / "e-broken").mkdir()
    (tmp_path / "e-broken" / SWEEP_TRIAL).write_text("not json")
    (tmp_path / "e-broken" / "run_manifest.json").write_text("{}")
    rows = list_runs(tmp_path)
    assert [(r.run_id, r.sweep, r.trial) for r in rows] == [
        ("b-plain", "", None), ("e-broken", "", None),  # outside any sweep
        ("c-trial-0", "a-sweep", 0), ("a-trial-1", "b-sweep", 1), ("d-trial-0", "b-sweep", 0),
    ]  # fmt: skip


def row(run_id: str, score: float | None, sweep: str = "", trial: int | None = None) -> RunRow:
    return RunRow(run_id, Path(run_id), "succeeded", "d", "m", 3, None, score, None,
                  sweep=sweep, trial=trial)  # fmt: skip


def test_each_sweep_is_ranked_on_its_own_with_a_sweep_column():
    table = format_runs([
        row("plain", 0.9), row("s1-t1", 0.5, "s1", 1), row("s1-t0", 0.2, "s1", 0),
        row("s2-t0", None, "s2", 0),
    ]).splitlines()  # fmt: skip
    assert table[0].split()[-1] == "sweep"
    cells = [line.split() for line in table[1:]]
    assert [(c[0], c[1], c[-2], c[-1]) if c[-1].startswith("#") else (c[0], c[1], c[-1])
            for c in cells] == [
        ("1", "plain", "-"), ("1", "s1-t1", "s1", "#1"), ("2", "s1-t0", "s1", "#0"),
        ("-", "s2-t0", "s2", "#0"),
    ]  # fmt: skip


def test_without_sweeps_the_table_is_unchanged():
    header = format_runs([row("plain", 0.9)]).splitlines()[0]
    assert header.split() == ["#", "run", "status", "score", "baseline", "format", "dataset",
                              "model", "steps"]  # fmt: skip
