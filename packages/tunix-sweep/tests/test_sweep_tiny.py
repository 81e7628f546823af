"""The acceptance test: a 4-trial tiny sweep over learning rate and LoRA rank on the CPU,
SIGKILLed once a trial has finished and the next is training, then rerun. The rerun
finishes the sweep without repeating the finished trial, resumes the killed trial's run
directory, and the best trial's run directory validates."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tunix_core.layout import SWEEP_TRIAL, RunLayout

TIMEOUT = 600.0


def progress_steps(sweep_dir: Path, number: int) -> int:
    progress = sweep_dir / "trials" / f"{number:04d}" / "progress.jsonl"
    if not progress.is_file():
        return 0
    return sum('"step"' in line for line in progress.read_text().splitlines())


def kill_during_second_trial(cwd: Path, env: dict[str, str], sweep_file: Path, sweep_dir: Path) -> str:
    """Start the sweep, SIGKILL it once trial 0 has finished and trial 1 has trained a
    step; its output so far."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tunix_core", "sweep", "-c", str(sweep_file), "--out", str(sweep_dir)],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout or []], daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while not any(line.startswith("trial 0: primary_score") for line in seen):
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        while progress_steps(sweep_dir, 1) < 1:
            assert process.poll() is None and time.monotonic() < deadline, "".join(seen)
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return "".join(seen)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, sweep_env: dict[str, str], sweep_file: Path,
          tunix: Any) -> dict[str, Any]:  # fmt: skip
    """The killed and rerun sweep: its folder, the rerun's output, and what the kill left."""
    cwd = tmp_path_factory.mktemp("work")
    sweep_dir = cwd / "sweeps" / "tiny"
    killed_output = kill_during_second_trial(cwd, sweep_env, sweep_file, sweep_dir)
    (finished_run,) = (sweep_dir / "runs").glob("tiny-trial-0000-*")
    (killed_run,) = (sweep_dir / "runs").glob("tiny-trial-0001-*")
    finished_manifest = RunLayout(finished_run).manifest_path
    before = {"mtime": finished_manifest.stat().st_mtime_ns, "manifest": finished_manifest.read_text()}
    holder = (killed_run / ".lock").read_text().split()[1]  # "pid N (tunix run)"
    time.sleep(1.0)  # the kernel kills the orphaned run at once (PR_SET_PDEATHSIG)
    rerun = tunix(cwd, "sweep", "-c", str(sweep_file))  # the same command, default --out
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    summary = json.loads((sweep_dir / "summary.json").read_text())
    return {"cwd": cwd, "dir": sweep_dir, "killed_output": killed_output, "rerun": rerun,
            "summary": summary, "finished_run": finished_run, "killed_run": killed_run,
            "finished_before": before, "killed_pid": int(holder)}  # fmt: skip


def test_the_killed_sweep_left_no_run_training(swept: dict[str, Any]):
    assert "trial 0: primary_score" in swept["killed_output"]
    assert not pid_alive(swept["killed_pid"])


def test_the_rerun_ends_with_the_planned_trials_and_retries_the_killed_one(swept: dict[str, Any]):
    summary, rerun = swept["summary"], swept["rerun"]
    definition = json.loads((swept["dir"] / "sweep.json").read_text())
    assert set(definition["space"]) == {"training.learning_rate", "training.lora.rank"}
    assert "trial 1 was running when the sweep stopped: failed, retried" in rerun.stdout
    by_number = {row["trial"]: row for row in summary["trials"]}
    assert summary["trials_planned"] == 4 and summary["trials_counted"] == 4
    assert sorted(by_number) == [0, 1, 2, 3, 4]
    killed, retry = by_number[1], by_number[2]
    assert killed["state"] == "fail" and killed["interrupted"]
    assert retry["retry_of"] == 1 and retry["params"] == killed["params"]
    assert retry["run_dir"] == killed["run_dir"] == str(swept["killed_run"])
    assert f"resuming {swept['killed_run']} of trial 1" in rerun.stdout
    counted = [row for row in summary["trials"] if not row["interrupted"]]
    assert all(row["state"] in ("complete", "pruned") for row in counted), counted
    assert by_number[0]["state"] == "complete" and summary["best"]["state"] == "complete"


def test_the_finished_trial_was_not_run_again(swept: dict[str, Any]):
    runs = sorted(p.name.rsplit("-", 2)[0] for p in (swept["dir"] / "runs").iterdir())
    assert runs == ["tiny-trial-0000", "tiny-trial-0001", "tiny-trial-0003", "tiny-trial-0004"]
    manifest = RunLayout(swept["finished_run"]).manifest_path
    assert manifest.stat().st_mtime_ns == swept["finished_before"]["mtime"]
    assert manifest.read_text() == swept["finished_before"]["manifest"]
    assert not [line for line in swept["rerun"].stdout.splitlines() if line.startswith("trial 0")]


def test_the_resumed_run_trained_every_step_once(swept: dict[str, Any]):
    run = swept["killed_run"]
    manifest = json.loads(RunLayout(run).manifest_path.read_text())
    assert manifest["status"] in ("succeeded", "interrupted")  # interrupted: pruned
    steps = [json.loads(line)["step"] for line in RunLayout(run).metrics_path.read_text().splitlines()]
    assert steps == sorted(set(steps))
    assert json.loads((run / SWEEP_TRIAL).read_text()) == {"sweep": "tiny", "trial": 2}


def test_the_summary_has_the_shape_both_backends_write(swept: dict[str, Any],
                                                       summary_shape: tuple[set[str], set[str]]):
    top, trial = summary_shape
    summary = swept["summary"]
    assert set(summary) == top and all(set(row) == trial for row in summary["trials"])
    assert summary["backend"] == "local"


def test_the_best_trials_run_directory_validates(swept: dict[str, Any], tunix: Any):
    best = swept["summary"]["best"]
    checked = tunix(swept["cwd"], "validate", best["run_dir"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads((Path(best["run_dir"]) / SWEEP_TRIAL).read_text())["trial"] == best["trial"]


def test_show_prints_the_leaderboard_and_writes_the_plots(swept: dict[str, Any], tunix: Any):
    shown = tunix(swept["cwd"], "sweep", "show", str(swept["dir"]))
    assert shown.returncode == 0, shown.stderr
    header, *rows = shown.stdout.split("\n\n")[0].splitlines()
    assert header.split() == ["#", "trial", "state", "primary_score", "time",
                              "training.learning_rate", "training.lora.rank"]  # fmt: skip
    assert len(rows) == 5 and rows[0].split()[0] == "1"
    assert f"best: trial {swept['summary']['best']['trial']}" in shown.stdout
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (swept["dir"] / plot).read_bytes().startswith(b"\x89PNG"), shown.stdout


def test_runs_list_groups_the_trials_under_their_sweep(swept: dict[str, Any], tunix: Any):
    listed = tunix(swept["cwd"], "runs", "list", "--dir", str(swept["dir"] / "runs"))
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[-1] == "sweep"
    assert sorted(row.split()[-1] for row in rows) == ["#0", "#2", "#3", "#4"]
    assert all(row.split()[-2] == "tiny" for row in rows)
