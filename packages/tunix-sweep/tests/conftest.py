"""Fixtures of the end-to-end tests: the tiny sweep (4 trials over the learning rate and
the LoRA rank of a random tiny Gemma 3, a few steps each, on the CPU) and a `tunix` runner
whose processes share one JAX compilation cache."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

Tunix = Callable[..., subprocess.CompletedProcess[str]]

TRIALS = 4
STEPS = 3
SWEEP = {
    "name": "tiny",
    "base": {
        "trainer": {"name": "jax", "options": {"progress_bar": False}},
        "dataset": {"name": "dev-reasoning-v2", "train_limit": 4, "eval_limit": 2},
        "model": {"preset": "tiny-gemma3", "weights": "random"},
        "training": {"steps": STEPS, "batch_size": 1, "max_seq_len": 256, "checkpoint_every": 1},
        "eval": {"max_new_tokens": 8, "limit": 2},
        "package": {"enabled": False},
        "logging": {"tensorboard": False},
    },
    "space": {
        "training.learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True},
        "training.lora.rank": {"type": "int", "low": 2, "high": 8},
    },
    "trials": TRIALS,
    "seed": 0,
}


@pytest.fixture(scope="session")
def sweep_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sweep-file") / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def sweep_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The test environment, with one JAX compilation cache for every trial's process
    (the nox run's, shared with its other sessions, where it set one)."""
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(tmp_path_factory.mktemp("jax-cache"))
    return {
        **os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": cache,
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }  # fmt: skip


@pytest.fixture(scope="session")
def tunix(sweep_env: dict[str, str]) -> Tunix:
    """`tunix ARGS` in folder ``cwd``, to completion."""

    def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tunix_core", *args], cwd=cwd, env=sweep_env,
                              capture_output=True, text=True, timeout=900)  # fmt: skip

    return run


@pytest.fixture(scope="session")
def summary_shape() -> tuple[set[str], set[str]]:
    """The keys of summary.json and of each of its trials, whichever backend wrote it."""
    top = {"sweep", "backend", "objective", "direction", "space", "trials_planned",
           "trials_counted", "best", "trials"}  # fmt: skip
    trial = {"trial", "state", "params", "value", "seconds", "steps_reported", "run_dir",
             "retry_of", "interrupted", "error"}  # fmt: skip
    return top, trial
