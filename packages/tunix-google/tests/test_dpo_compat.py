"""`tunix run --trainer google-tunix-dpo` on the tiny model, with google-tunix 0.1.7 and
qwix installed (the nox session `compat`): google-tunix's DPOTrainer on tunix's
preference pairs, SIGKILLed after a step and resumed from its own checkpoint, logs every
step once, its loss falls and its margin grows, and the run directory is valid."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

STEPS = 6
# After step 5 the checkpoint of step 4 may still be written in the background; that of
# step 2 is complete (a save waits for the one before).
KILL_AT = 5
TINY = [
    "--trainer", "google-tunix-dpo", "--dataset", "dev-reasoning-v2", "--model", "tiny-gemma3",
    "--weights", "random", "--steps", str(STEPS),
    "--set", "dataset.train_limit=8", "--set", "dataset.eval_limit=4",
    "--set", "dataset.system_prompt=Solve.", "--set", "eval.max_new_tokens=8",
    "--set", "training.max_seq_len=256", "--set", "training.batch_size=4",
    "--set", "training.checkpoint_every=2", "--set", "training.learning_rate=0.01",
    "--set", "training.warmup_steps=0", "--set", "trainer.options.pairs=pairs.jsonl",
    "--set", "trainer.options.progress_bar=false",
    # The export and packaging are google-tunix-sft's (test_sft_compat.py).
    "--set", "eval.baseline=false", "--set", "package.enabled=false",
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


def planted_pairs(path: Path) -> None:
    """Pairs whose chosen answer is a number and rejected answer a word (tunix-jax's
    tests/rl/test_preference.py)."""
    words = ["seven", "many", "none", "lots"]
    with path.open("w") as out:
        for i in range(16):
            a, b = i % 5, i // 5
            reasoning = f"<reasoning>{a} + {b} = {a + b}</reasoning>"
            out.write(json.dumps({
                "prompt": f"What is {a} + {b}?",
                "chosen": f"{reasoning}<answer>{a + b}</answer>",
                "rejected": f"{reasoning}<answer>{words[i % 4]}</answer>",
            }) + "\n")  # fmt: skip


def tunix(cwd: Path, *args: str, script: str | None = None) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-c", script, *args]
        if script
        else [sys.executable, "-m", "tunix_core", *args]
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, env=env)


def test_a_killed_google_tunix_dpo_run_resumes_and_learns_the_preference(tmp_path: Path):
    planted_pairs(tmp_path / "pairs.jsonl")
    killed = tunix(tmp_path, "run", *TINY, script=KILLING_CLI)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit())

    resumed = tunix(tmp_path, "run", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from google-tunix's checkpoint of step" in resumed.stdout
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    stages = {name: stage["status"] for name, stage in manifest["stages"].items()}
    assert stages == {"dataset": "done", "baseline": "skipped", "train": "done",
                      "evaluate": "done", "package": "skipped"}  # fmt: skip
    assert manifest["environment"]["packages"]["google-tunix"] == "0.1.7"

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    losses = [r["loss"] for r in records]
    print(f"google-tunix-dpo loss: first {losses[0]:.4f}, last {losses[-1]:.4f}")
    assert losses[-1] < 0.5 * losses[0], losses
    assert records[-1]["margin"] > records[0]["margin"]
    assert records[-1]["accuracy"] == 1.0

    checked = tunix(tmp_path, "validate", str(run))
    assert checked.returncode == 0, checked.stdout + checked.stderr
