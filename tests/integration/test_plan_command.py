"""``tunix plan`` on the tiny random model, with every package installed (its measuring
run evaluates with tunix-eval's evaluators): it measures two SFT phases on this CPU, and
its plan is a config whose budgets fit the hours less the margin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tunix_core.config import load_config, parse_duration
from tunix_core.session_plan import DEFAULT_RESERVE_FRACTION

TINY = {
    "trainer": {"name": "jax", "options": {"progress_bar": False}},
    "dataset": {"name": "dev-reasoning-v2", "train_limit": 16, "eval_limit": 8},
    "model": {"preset": "tiny-gemma3", "weights": "random"},
    "training": {"batch_size": 2, "max_seq_len": 512,
                 "phases": [{"trainer": "jax", "steps": 30}, {"trainer": "jax", "steps": 10}]},
    "eval": {"limit": 4, "batch_size": 2, "max_new_tokens": 8},
}  # fmt: skip


def tunix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunix_core", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900)  # fmt: skip


def test_plan_measures_and_writes_budgets_within_the_hours(tmp_path: Path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "run": {"output_dir": str(tmp_path / "runs")}}))
    out = tmp_path / "plan.yaml"
    done = tunix(tmp_path, "plan", "-c", str(config), "--hours", "0.5", "--margin", "3m",
                 "--max-loss", "20s", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train 2: jax" in done.stdout and f"wrote {out}" in done.stdout
    assert not (tmp_path / "runs").exists()  # the measuring run went with its temporary folder
    phases = load_config(out).training.phases
    assert len(phases) == 2
    train_seconds = 0.0
    for phase in phases:
        assert phase["steps"] >= 1 and phase["epochs"] is None
        assert 1 <= phase["checkpoint_every"] <= phase["steps"]
        train_seconds += parse_duration(phase["time_budget"]) * (1 - DEFAULT_RESERVE_FRACTION)
    assert train_seconds <= 0.5 * 3600 - 3 * 60
    # The first phase was asked for three times the steps of the second: it gets more.
    assert phases[0]["steps"] > phases[1]["steps"]
