"""One trial: an ordinary ``tunix run`` in a subprocess, watched through a progress file.

The subprocess isolates each trial's memory (JAX, the model) and lets Ray place it on any
worker. The sweep's own plugin (:mod:`tunix_sweep.plugin`), loaded in that subprocess like
every plugin, appends to the file named by :data:`PROGRESS_ENV`: the run directory once it
exists, then each training step's metrics, which the parent reads to prune.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from tunix_core.errors import TunixError
from tunix_sweep.plugin import PROGRESS_ENV, SWEEP_ENV, TRIAL_ENV

PROGRESS = "progress.jsonl"
OUTPUT = "output.log"  # the trial's stdout and stderr
CONFIG = "trial_config.yaml"  # the run config the trial starts from
TRIALS = "trials"  # the sweep folder's folder of trial folders
POLL_SECONDS = 0.5
STOP_GRACE_SECONDS = 60.0  # how long a pruned run may take to record itself interrupted

# Called with (step, its metrics) for each training step; True stops (prunes) the trial.
StepCallback = Callable[[int, dict[str, float]], bool]


@attrs.frozen
class TrialOutcome:
    """How a trial's run ended: ``run_dir`` is None when it failed before creating one."""

    run_dir: Path | None
    returncode: int
    pruned: bool
    output_path: Path

    def failure(self) -> str:
        """The last lines of the run's output, for the trial's error."""
        lines = self.output_path.read_text(errors="replace").strip().splitlines()
        return f"tunix run exited with {self.returncode}: " + " | ".join(lines[-3:])


def trial_dir(sweep_dir: Path, number: int) -> Path:
    return sweep_dir / TRIALS / f"{number:04d}"


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel SIGKILLs it when the sweep dies, so a
    killed sweep leaves no run training on (and holding its run directory's lock).
    Ctrl-C gets its default action back: a sweep started in the background (``nohup``,
    ``&``, a CI job) has SIGINT ignored, and Python would then never raise
    KeyboardInterrupt in the run, so pruning could not stop it cleanly."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_trial(
    *,
    sweep_id: str,
    number: int,
    folder: Path,
    config: Mapping[str, Any] | None,
    resume: Path | None,
    on_step: StepCallback,
    on_run_dir: Callable[[Path], None] = lambda _: None,
    cwd: Path | None = None,
) -> TrialOutcome:
    """Run trial ``number`` in ``folder`` (its config, progress and output files): a new run
    from ``config``, or ``tunix run --resume`` of ``resume``. Returns once the run exits."""
    folder.mkdir(parents=True, exist_ok=True)
    progress = folder / PROGRESS
    progress.write_text("")
    if resume is not None:
        args = ["run", "--resume", str(resume)]
    else:
        assert config is not None
        (folder / CONFIG).write_text(yaml.safe_dump(dict(config), sort_keys=False))
        args = ["run", "-c", str(folder / CONFIG)]
    env = {**os.environ, PROGRESS_ENV: str(progress), SWEEP_ENV: sweep_id, TRIAL_ENV: str(number)}
    output_path = folder / OUTPUT
    with output_path.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tunix_core", *args], cwd=cwd, env=env, stdout=output,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        try:
            run_dir, pruned = _watch(process, progress, on_step, on_run_dir)
        finally:
            if process.poll() is None:  # the sweep itself is stopping: stop the run cleanly
                _stop(process)
    return TrialOutcome(run_dir, process.returncode, pruned, output_path)


def _watch(
    process: subprocess.Popen[bytes],
    progress: Path,
    on_step: StepCallback,
    on_run_dir: Callable[[Path], None],
) -> tuple[Path | None, bool]:
    run_dir: Path | None = None
    offset = 0
    while True:
        finished = process.poll() is not None  # read once more after the run exits
        with progress.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written waits
        offset += len(complete)
        for line in complete.decode().splitlines():
            record = json.loads(line)
            if "run_dir" in record:
                run_dir = Path(record["run_dir"])
                on_run_dir(run_dir)
                continue
            step = int(record.pop("step"))
            metrics = {name: float(value) for name, value in record.items()}
            if on_step(step, metrics) and not finished:
                _stop(process)
                return run_dir, True
        if finished:
            return run_dir, False
        time.sleep(POLL_SECONDS)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C for the run (it records itself ``interrupted``), then SIGKILL if it hangs."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class TrialFailed(TunixError):
    """A trial's run failed; the sweep records it and goes on with the next trial."""
