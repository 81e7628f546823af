"""The tiny sweep with `--backend ray` on a local Ray instance (needs tunix-sweep[ray],
which nox's tunix-sweep tests install): the same study, run directories and summary as
locally. Two of its trials, not four: each trial is a process that compiles its own LoRA
rank, and two show what four do (every trial on Ray, the best one chosen)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tunix_core.layout import SWEEP_TRIAL

pytestmark = pytest.mark.ray


def test_the_tiny_sweep_on_ray_has_the_local_result_shape(
    tmp_path: Path, sweep_file: Path, tunix: Any, summary_shape: tuple[set[str], set[str]]
):
    two_trials = tmp_path / "sweep.yaml"
    two_trials.write_text(yaml.safe_dump({**yaml.safe_load(sweep_file.read_text()), "trials": 2}))
    sweep_dir = tmp_path / "sweep"
    swept = tunix(tmp_path, "sweep", "-c", str(two_trials), "--out", str(sweep_dir),
                  "--backend", "ray")  # fmt: skip
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr[-3000:]
    summary = json.loads((sweep_dir / "summary.json").read_text())
    top, trial = summary_shape
    assert set(summary) == top and all(set(row) == trial for row in summary["trials"])
    assert summary["backend"] == "ray" and summary["trials_counted"] == 2
    assert {row["state"] for row in summary["trials"]} <= {"complete", "pruned"}
    for row in summary["trials"]:
        assert set(row["params"]) == {"training.learning_rate", "training.lora.rank"}
        marker = json.loads((Path(row["run_dir"]) / SWEEP_TRIAL).read_text())
        assert marker == {"sweep": "tiny", "trial": row["trial"]}
        assert row["steps_reported"] >= 1  # the training loss reached the study
    best = summary["best"]
    assert best["state"] == "complete"
    assert f"best: trial {best['trial']}" in swept.stdout
    checked = tunix(tmp_path, "validate", best["run_dir"])
    assert checked.returncode == 0, checked.stdout + checked.stderr
