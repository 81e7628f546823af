"""A GRPO run of the ``grpo`` trainer on the tiny model, SIGKILLed after its checkpoint
of step 2 and resumed, ends with exactly the parameters and per-step rewards of an
uninterrupted run: the sampling seeds are a function of the step, so the resumed run
draws the same completions. In the ``crash`` nox session with the other SIGKILL tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tunix_core.jsonio import read_jsonl

ROOT = Path(__file__).resolve().parents[2]
# Runs a trainer in a fresh process; it gives the grpo trainer a reward the tiny model
# learns (the completion starts with a digit).
SCRIPT = ROOT / "packages" / "tunix-jax" / "tests" / "train_script.py"
CONFIG = {
    "dataset": {"system_prompt": "Solve."},
    "model": {"preset": "tiny-gemma3", "weights": "random"},
    "training": {"steps": 4, "batch_size": 4, "max_seq_len": 64, "checkpoint_every": 2,
                 "learning_rate": 1e-2, "warmup_steps": 0, "schedule": "constant",
                 "lora": {"enabled": False}},
    "trainer": {"name": "grpo", "options": {
        "progress_bar": False, "num_generations": 8, "max_new_tokens": 4, "beta": 0.04,
        "rewards": {"starts_with_digit": 1.0}}},
}  # fmt: skip


def _subprocess_env(tmp_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*sys.path, env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    # The nox run's cache for all sessions, or one of this test's own.
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(tmp_root / "jax-cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    return env


def _model_params(model_dir: Path) -> dict[str, np.ndarray]:
    from tunix_jax.models.gemma.config import get_config
    from tunix_jax.weights.orbax_io import read_params

    return {
        "/".join(map(str, k)): np.asarray(v.value)
        for k, v in read_params(model_dir / "params", get_config("tiny-gemma3")).items()
    }


def test_a_grpo_run_killed_with_sigkill_resumes_to_the_same_parameters(tmp_path):
    steps = CONFIG["training"]["steps"]
    config = CONFIG
    env = _subprocess_env(tmp_path)

    def run_script(run_path: Path, delay: float = 0.0) -> subprocess.CompletedProcess[str]:
        spec = json.dumps({"config": config, "examples": 16, "batch_delay": delay})
        return subprocess.run([sys.executable, str(SCRIPT), str(run_path), spec], env=env,
                              capture_output=True, text=True, timeout=400)  # fmt: skip

    straight = run_script(tmp_path / "straight")
    assert straight.returncode == 0, straight.stdout + straight.stderr

    killed = tmp_path / "killed"
    spec = json.dumps({"config": config, "examples": 16, "batch_delay": 0.5})
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(killed), spec], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (killed / "checkpoints" / "2").is_dir() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint of step 2 within 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0].decode()
    assert process.returncode == -signal.SIGKILL, output
    assert not (killed / "model" / "model_config.json").exists()

    resumed = run_script(killed)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from the checkpoint of step 2" in resumed.stdout
    expected, actual = _model_params(tmp_path / "straight" / "model"), _model_params(killed / "model")
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        np.testing.assert_array_equal(actual[name], value, err_msg=name)
    straight_rewards = [r["reward"] for r in read_jsonl(tmp_path / "straight" / "metrics.jsonl")]
    resumed_rewards = [r["reward"] for r in read_jsonl(killed / "metrics.jsonl")]
    assert resumed_rewards == straight_rewards and len(resumed_rewards) == steps
