"""`tunix run --trainer google-tunix-sft` on the tiny model, with google-tunix 0.1.7 and
qwix installed (the nox session `compat`): SIGKILLed after a step, resumed from
google-tunix's own checkpoint, it goes through all five stages, passes `tunix validate`,
its loss falls, and the exported params/ load with google-tunix's loader and ours to the
same logits."""

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.compat

STEPS = 8
KILL_AT = 5
TINY = [
    "--trainer", "google-tunix-sft", "--dataset", "dev-reasoning-v2", "--model", "tiny-gemma3",
    "--weights", "random", "--steps", str(STEPS),
    "--set", "dataset.train_limit=8", "--set", "dataset.eval_limit=4",
    "--set", "eval.max_new_tokens=8", "--set", "training.max_seq_len=256",
    "--set", "training.batch_size=2", "--set", "training.checkpoint_every=2",
    "--set", "training.learning_rate=0.01", "--set", "training.warmup_steps=0",
    "--set", "trainer.options.progress_bar=false",
    # A tiny model misses the judges' path gate's format threshold (tunix-package's test_gate.py).
    "--set", "package.options.judges_path=false",
]  # fmt: skip
# `tunix` with a plugin whose step hook SIGKILLs the process after step KILL_AT (the hook
# runs after the step's metrics line and checkpoint are handled).
KILLING_CLI = f"""
import os, signal, sys
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import get_host

class KillAfterStep:
    @hookimpl
    def tunix_train_step_end(self, step, metrics, run):
        if step == {KILL_AT}:
            os.kill(os.getpid(), signal.SIGKILL)

get_host().manager.register(KillAfterStep())
from tunix_core.cli import main
sys.argv = ["tunix", *sys.argv[1:]]
main()
"""
TOKENS = np.array([[2, 40, 41, 300, 7, 8, 99, 120, 5, 6, 260, 31, 17, 18]], np.int32)


def tunix(cwd: Path, *args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-c", script, *args]
        if script
        else [sys.executable, "-m", "tunix_core", *args]
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


def test_a_killed_google_tunix_run_resumes_to_a_valid_export_both_loaders_read(tmp_path: Path):
    from tunix_jax.export.google_tunix import load_with_google_tunix
    from tunix_jax.models.gemma.config import get_config
    from tunix_jax.weights.loading import load_model

    killed = tunix(tmp_path, "run", *TINY, script=KILLING_CLI)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit())

    resumed = tunix(tmp_path, "run", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from google-tunix's checkpoint of step" in resumed.stdout
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert all(stage["status"] == "done" for stage in manifest["stages"].values())
    assert manifest["environment"]["packages"]["google-tunix"] == "0.1.7"

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    # The resumed steps count on from the restored step's tokens.
    assert all(b["tokens"] > a["tokens"] for a, b in itertools.pairwise(records))
    losses = [r["loss"] for r in records]
    print(f"google-tunix-sft loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")
    assert losses[-1] < 0.8 * losses[0], losses

    checked = tunix(tmp_path, "validate", str(run))
    assert checked.returncode == 0, checked.stdout + checked.stderr

    params = run / "model" / "params"
    theirs, how = load_with_google_tunix(params, get_config("tiny-gemma3"), jnp.float32)
    assert "create_model_from_checkpoint" in how
    ours, _ = load_model("tiny-gemma3", f"orbax:{params}")
    causal = np.tril(np.ones((1, TOKENS.shape[1], TOKENS.shape[1]), bool))
    positions = np.arange(TOKENS.shape[1])[None]
    expected = np.asarray(theirs(TOKENS, positions, None, causal)[0])
    np.testing.assert_allclose(np.asarray(ours(TOKENS, positions)[0]), expected, atol=1e-4, rtol=0)
