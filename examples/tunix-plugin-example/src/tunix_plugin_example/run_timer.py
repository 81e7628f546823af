"""Stage times of runs on the digit-sum dataset, logged to ``run.log`` as one line when the
run ends (the ``tunix_run_started``, ``tunix_stage_finished`` and ``tunix_run_finished``
hooks in plugin.py). Runs on other datasets are left alone."""

from __future__ import annotations

import logging

from tunix_core.protocols import DatasetRegistry
from tunix_core.rundir import RunDirectory

DATASET = "digit-sum"

# A child of the "tunix" logger, which writes run.log while a run is going.
log = logging.getLogger("tunix.example.run_timer")

# run id -> stage -> seconds, for the runs started in this process
_stage_seconds: dict[str, dict[str, float]] = {}


def is_timed(run: RunDirectory) -> bool:
    return DatasetRegistry.split_name(run.manifest["dataset"])[0] == DATASET


def start(run: RunDirectory) -> None:
    if is_timed(run):
        _stage_seconds[run.run_id] = {}


def record(run: RunDirectory, stage: str, seconds: float) -> None:
    if run.run_id in _stage_seconds:
        _stage_seconds[run.run_id][stage] = seconds


def finish(run: RunDirectory, status: str) -> str | None:
    """Log and return the run's timing line, or None for a run that is not timed."""
    times = _stage_seconds.pop(run.run_id, None)
    if times is None:
        return None
    stages = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in times.items())
    line = f"{DATASET} run {run.run_id} {status} after {sum(times.values()):.1f}s ({stages or 'no stage ran'})"
    log.info(line)
    return line
