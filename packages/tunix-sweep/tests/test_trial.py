"""A trial's run is watched through its progress file: every step reaches the sweep,
and a pruned run is stopped with Ctrl-C so that it records itself interrupted."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

from tunix_core.layout import SWEEP_TRIAL, RunLayout
from tunix_sweep import plugin
from tunix_sweep.trial import _die_with_parent, _watch

# Stands in for `tunix run`: reports its run directory and 50 steps (an evaluation every 5
# steps, as eval.during_training.every: 5 adds), waits `hold` seconds
# (so a slow watcher still finds it running), then exits 0; on Ctrl-C it writes
# "interrupted" and exits 130, as a run does.
FAKE_RUN = textwrap.dedent("""
    import json, sys, time
    progress, marker, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
    def report(record):
        with open(progress, "a") as handle:
            handle.write(json.dumps(record) + "\\n")
    try:
        report({"run_dir": "/runs/r1"})
        for step in range(1, 51):
            evaluated = {"eval/ood_accuracy": step / 100} if step % 5 == 0 else {}
            report({"step": step, "loss": 10.0 / step, **evaluated})
            time.sleep(0.05)
        time.sleep(hold)
    except KeyboardInterrupt:
        open(marker, "w").write("interrupted")
        sys.exit(130)
""")


Steps = list[tuple[int, dict[str, float]]]


def watch(tmp_path: Path, prune_at: int | None) -> tuple[Steps, Path | None, bool, int, Path]:
    progress, marker = tmp_path / "progress.jsonl", tmp_path / "stopped"
    progress.write_text("")
    # A run that is pruned must still be running when the watcher reads step `prune_at`,
    # however loaded the machine: it holds on after its last step.
    hold = "0" if prune_at is None else "120"
    # Started the way the sweep starts a run (whatever SIGINT disposition pytest inherited).
    process = subprocess.Popen([sys.executable, "-c", FAKE_RUN, str(progress), str(marker), hold],
                               preexec_fn=_die_with_parent)  # fmt: skip
    steps: Steps = []
    run_dirs: list[Path] = []

    def on_step(step: int, metrics: dict[str, float]) -> bool:
        steps.append((step, metrics))
        return step == prune_at

    run_dir, pruned = _watch(process, progress, on_step, run_dirs.append)
    process.wait(timeout=30)
    assert run_dirs == [Path("/runs/r1")]
    return steps, run_dir, pruned, process.returncode, marker


def test_every_step_reaches_the_sweep_once_in_order(tmp_path: Path):
    steps, run_dir, pruned, returncode, marker = watch(tmp_path, prune_at=None)
    assert [s for s, _ in steps] == list(range(1, 51))
    assert steps[1] == (2, {"loss": 5.0})
    assert steps[4] == (5, {"loss": 2.0, "eval/ood_accuracy": 0.05})  # every metric of the step
    assert run_dir == Path("/runs/r1") and not pruned and returncode == 0
    assert not marker.exists()


def test_a_pruned_run_is_stopped_with_ctrl_c(tmp_path: Path):
    steps, _, pruned, returncode, marker = watch(tmp_path, prune_at=3)
    assert pruned and returncode == 130
    assert marker.read_text() == "interrupted"
    assert steps[-1][0] == 3 and len(steps) < 50


@attrs.frozen
class FakeRun:
    path: Path


def test_the_plugin_reports_only_inside_a_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    run = RunLayout(tmp_path / "run")  # what the hooks read of a run
    run.path.mkdir()
    monkeypatch.delenv(plugin.PROGRESS_ENV, raising=False)
    plugin.tunix_run_started(run, {})  # type: ignore[arg-type]
    plugin.tunix_train_step_end(1, {"loss": 2.0}, run)  # type: ignore[arg-type]
    assert list(run.path.iterdir()) == []  # an ordinary run is left alone

    progress = tmp_path / "progress.jsonl"
    monkeypatch.setenv(plugin.PROGRESS_ENV, str(progress))
    monkeypatch.setenv(plugin.SWEEP_ENV, "lr-rank")
    monkeypatch.setenv(plugin.TRIAL_ENV, "3")
    plugin.tunix_run_started(run, {})  # type: ignore[arg-type]
    plugin.tunix_train_step_end(1, {"loss": 2.5, "grad_norm": 1.0}, run)  # type: ignore[arg-type]
    plugin.tunix_train_step_end(2, {"loss": 2.0, "eval/ood_accuracy": 0.5}, run)  # type: ignore[arg-type]
    assert json.loads((run.path / SWEEP_TRIAL).read_text()) == {"sweep": "lr-rank", "trial": 3}
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert lines == [{"run_dir": str(run.path)}, {"step": 1, "loss": 2.5, "grad_norm": 1.0},
                     {"step": 2, "loss": 2.0, "eval/ood_accuracy": 0.5}]  # fmt: skip
