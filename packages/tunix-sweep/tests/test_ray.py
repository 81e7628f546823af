"""The tiny sweep with `--backend ray` on a local Ray instance (needs tunix-sweep[ray],
which nox's tunix-sweep tests install): the same study, run directories and summary as
locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunix_core.layout import SWEEP_TRIAL

pytestmark = pytest.mark.ray


def test_the_tiny_sweep_on_ray_has_the_local_result_shape(
    tmp_path: Path, sweep_file: Path, tunix: Any, summary_shape: tuple[set[str], set[str]]
):
    sweep_dir = tmp_path / "sweep"
    swept = tunix(tmp_path, "sweep", "-c", str(sweep_file), "--out", str(sweep_dir),
                  "--backend", "ray")  # fmt: skip
    assert swept.returncode == 0, swept.stdout[-3000:] + swept.stderr[-3000:]
    summary = json.loads((sweep_dir / "summary.json").read_text())
    top, trial = summary_shape
    assert set(summary) == top and all(set(row) == trial for row in summary["trials"])
    assert summary["backend"] == "ray" and summary["trials_counted"] == 4
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
