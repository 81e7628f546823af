"""`tunix run --trainer google-tunix-grpo` on the tiny model, with google-tunix 0.1.7 and
qwix installed (the nox session `compat`): google-tunix's GRPOLearner scores its samples
with tunix's reward plugins (one registered here, and the built-in `format`), each step's
metrics line holds the rewards those plugins returned, and a run SIGKILLed after a step
resumes from google-tunix's checkpoint to a valid run directory."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

STEPS = 3
# Checkpoints every step: after step 2 its checkpoint may still be written in the
# background; that of step 1 is complete (a save waits for the one before).
KILL_AT = 2
TINY = [
    "--trainer", "google-tunix-grpo", "--dataset", "dev-reasoning-v2", "--model", "tiny-gemma3",
    "--weights", "random", "--steps", str(STEPS),
    "--set", "dataset.train_limit=8", "--set", "dataset.eval_limit=4",
    "--set", "eval.max_new_tokens=8", "--set", "training.max_seq_len=256",
    "--set", "training.batch_size=2", "--set", "training.checkpoint_every=1",
    "--set", "trainer.options.max_new_tokens=16", "--set", "trainer.options.progress_bar=false",
    "--set", 'trainer.options.rewards={"characters": 1.0, "format": 0.5}',
    # The export and packaging are google-tunix-sft's (test_sft_compat.py).
    "--set", "eval.baseline=false", "--set", "package.enabled=false",
]  # fmt: skip
# `tunix` with the reward `characters` registered (a completion's length,
# each batch's scores appended to scored.jsonl) and, with KILL set, SIGKILLs the process
# after step KILL_AT (its step hook runs after the step's metrics line and checkpoint).
CLI = f"""
import json, os, signal, sys
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import get_host

def characters(prompts, completions, expected, meta, *, context):
    scores = [float(len(c)) for c in completions]
    with open("scored.jsonl", "a") as out:
        out.write(json.dumps(scores) + "\\n")
    return scores

class KillAfterStep:
    @hookimpl
    def tunix_train_step_end(self, step, metrics, run):
        if step == {KILL_AT} and os.environ.get("KILL"):
            os.kill(os.getpid(), signal.SIGKILL)

host = get_host()
host.rewards.register("characters", "__main__:characters", description="completion length")
host.manager.register(KillAfterStep())
from tunix_core.cli import main
sys.argv = ["tunix", *sys.argv[1:]]
main()
"""


def tunix(cwd: Path, *args: str, kill: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **({"KILL": "1"} if kill else {})}
    return subprocess.run([sys.executable, "-c", CLI, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900, env=env)  # fmt: skip


def test_a_killed_grpo_run_logs_the_reward_plugins_scores_and_resumes(tmp_path: Path):
    killed = tunix(tmp_path, "run", *TINY, kill=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    assert sorted(p.name for p in (run / "checkpoints" / "actor").iterdir() if p.name.isdigit())

    resumed = tunix(tmp_path, "run", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    marker = "resumed from google-tunix's checkpoint of step "
    assert marker in resumed.stdout, resumed.stdout[-3000:]
    restored = int(resumed.stdout.split(marker)[1].split()[0])
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    stages = {name: stage["status"] for name, stage in manifest["stages"].items()}
    assert stages == {"dataset": "done", "baseline": "skipped", "train": "done",
                      "evaluate": "done", "package": "skipped"}  # fmt: skip
    assert manifest["environment"]["packages"]["google-tunix"] == "0.1.7"

    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    # One scoring per step: the killed run's up to the kill, the resumed run's after the
    # step it restored; each step's line holds the mean and std of those very scores.
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert len(scored) == KILL_AT + STEPS - restored
    by_step = scored[:restored] + scored[KILL_AT:]
    for record, scores in zip(records, by_step, strict=True):
        mean = sum(scores) / len(scores)
        std = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
        assert record["reward/characters"] == pytest.approx(mean)
        assert record["reward/characters_std"] == pytest.approx(std)
        assert "reward/format" in record and "kl" in record and "clip_fraction" in record
    print("google-tunix-grpo rewards/characters per step:",
          [round(r["reward/characters"], 2) for r in records])  # fmt: skip

    checked = tunix(tmp_path, "validate", str(run))
    assert checked.returncode == 0, checked.stdout + checked.stderr
