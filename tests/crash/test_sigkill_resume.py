"""Kill a tiny `tunix run` with SIGKILL at random points of every stage, 20 times with
fixed seeds, resume each run to completion, and check it ends exactly as an uninterrupted
run does: valid evidence, the same trained weights, every training step logged once.

Each run is killed once per stage, in stage order: the first attempt during `dataset`,
its resume during `baseline`, that resume during `train`, and so on; a last resume
finishes it. The nox session `crash` runs this (CI does too); it is not in `tests`.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tunix_core.plugins import get_host
from tunix_core.protocols import RunContext
from tunix_package.validation import validate_path

STEPS = 3
TINY = [
    "--trainer", "jax", "--dataset", "dev-reasoning-v2", "--model", "tiny-gemma3",
    "--weights", "random", "--steps", str(STEPS),
    "--set", "dataset.train_limit=4", "--set", "dataset.eval_limit=2",
    "--set", "eval.max_new_tokens=8", "--set", "training.max_seq_len=256",
    "--set", "training.batch_size=1", "--set", "training.checkpoint_every=1",
    "--set", "trainer.options.progress_bar=false",
    # A cached baseline is a file copy of milliseconds: no kill could land inside it.
    "--set", "eval.baseline_cache=false",
]  # fmt: skip
STAGES = ("dataset", "baseline", "train", "evaluate", "package")
# How long after a stage starts a kill may land, in seconds: about the stage's length on a
# 2-core CPU, so the kill falls inside it (a slower machine only moves it earlier).
KILL_WINDOW = {"dataset": 0.02, "baseline": 1.5, "train": 5.0, "evaluate": 0.8, "package": 0.8}
RUNS = 4  # x one kill per stage = 20 kills
SEEDS = range(RUNS)
STAGE_TIMEOUT = 300.0


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    # Every process of this module shares compiled programs (with the other sessions of
    # the nox run when it set a cache for all of them).
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(tmp_path_factory.mktemp("jax-cache")))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    return env


def start(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], queue.Queue[str | None]]:
    """`tunix ARGS` with its output lines arriving on a queue (read by a thread, so the
    caller can wait for one line with a timeout)."""
    process = subprocess.Popen([sys.executable, "-m", "tunix_core", *args], cwd=cwd, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def kill_during(stage: str, delay: float, args: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """Start `tunix ARGS`, SIGKILL it ``delay`` seconds after ``stage`` starts; its output."""
    process, lines = start(args, cwd, env)
    seen: list[str] = []
    deadline = time.monotonic() + STAGE_TIMEOUT
    while f"[{stage}] starting" not in seen:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()
            pytest.fail(f"no [{stage}] in {STAGE_TIMEOUT:.0f}s; it printed:\n" + "\n".join(seen))
        if line is None:
            process.wait(timeout=60)
            pytest.fail(f"ended (exit {process.returncode}) before {stage}:\n" + "\n".join(seen))
        seen.append(line)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"finished before the kill in {stage}:\n" + "\n".join(seen)
    return seen


def finish(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "tunix_core", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def steps_of(metrics_lines: list[str]) -> list[int]:
    return [json.loads(line)["step"] for line in metrics_lines if line.strip()]


def the_run(output_dir: Path) -> Path:
    (run,) = output_dir.iterdir()
    return run


@pytest.fixture(scope="module")
def reference_fingerprint(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> str:
    """The trained fingerprint of the same run, never interrupted: trained once per pytest
    run, also under xdist, whose workers share the folder above their own temp folders."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return train_reference(tmp_path_factory.mktemp("reference"), env)
    shared = tmp_path_factory.getbasetemp().parent  # this pytest run's, not an earlier one's
    with open(shared / "crash-reference.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits for the first one's run
        known = shared / "crash-reference.fingerprint"
        if not known.exists():
            known.write_text(train_reference(shared / "crash-reference", env))
        return known.read_text()


def train_reference(root: Path, env: dict[str, str]) -> str:
    root.mkdir(exist_ok=True)
    finish(["run", *TINY, "--output-dir", str(root / "runs")], root, env)
    fingerprint = json.loads((the_run(root / "runs") / "run_manifest.json").read_text())["model_fingerprint"]
    assert fingerprint
    return str(fingerprint)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_run_killed_in_every_stage_resumes_to_the_uninterrupted_result(
    seed: int, tmp_path: Path, env: dict[str, str], reference_fingerprint: str
):
    rng = random.Random(seed)
    runs = tmp_path / "runs"
    interrupted_in = []
    for index, stage in enumerate(STAGES):
        delay = rng.uniform(0.0, KILL_WINDOW[stage])
        args = ["run", *TINY, "--output-dir", str(runs)] if index == 0 else ["run", "--resume", str(the_run(runs))]
        kill_during(stage, delay, args, tmp_path, env)
        manifest = json.loads((the_run(runs) / "run_manifest.json").read_text())
        running = [name for name, record in manifest["stages"].items() if record["status"] == "running"]
        interrupted_in.append(f"{stage}+{delay:.2f}s -> {running[0] if running else 'between stages'}")
    print(f"seed {seed}: killed in " + ", ".join(interrupted_in))

    run = the_run(runs)
    output = finish(["run", "--resume", str(run)], tmp_path, env)
    assert f"Run {run.name}: succeeded" in output
    assert validate_path(run, context=RunContext(get_host())) == []
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert manifest["model_fingerprint"] == reference_fingerprint
    assert steps_of((run / "metrics.jsonl").read_text().splitlines()) == list(range(1, STEPS + 1))
    (bundle,) = (run / "submission").glob("*.zip")
    with zipfile.ZipFile(bundle) as archive:
        bundled = archive.read("metrics.jsonl").decode().splitlines()
        assert ".lock" not in archive.namelist()
    assert steps_of(bundled) == list(range(1, STEPS + 1))
