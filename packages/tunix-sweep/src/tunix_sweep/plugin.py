"""tunix-sweep's plugin: the ``sweep`` command, and the two hooks through which a trial's
``tunix run`` (a subprocess of the sweep) tells the sweep its run directory and each
training step's metrics. Outside a sweep the hooks do nothing; this module imports nothing
heavy, since every ``tunix`` command loads it."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from tunix_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from tunix_core.command_group import TunixGroup
    from tunix_core.rundir import RunDirectory

# What a trial's subprocess inherits from the sweep (tunix_sweep.trial sets them).
PROGRESS_ENV = "TUNIX_SWEEP_PROGRESS"  # the file the hooks append to
SWEEP_ENV = "TUNIX_SWEEP_ID"
TRIAL_ENV = "TUNIX_SWEEP_TRIAL"


@hookimpl
def tunix_register_commands(cli: TunixGroup) -> None:
    cli.add_lazy_command(
        "sweep", "tunix_sweep.cli:sweep",
        "Search config fields with Optuna, one run per trial; `sweep show` for results.",
    )  # fmt: skip


def _report(record: dict[str, Any]) -> None:
    progress = os.environ.get(PROGRESS_ENV)
    if progress:
        with open(progress, "a", encoding="utf-8") as handle:  # one line, appended whole
            handle.write(json.dumps(record) + "\n")


@hookimpl
def tunix_run_started(run: RunDirectory, config: dict[str, Any]) -> None:
    """In a trial: mark the run directory with its sweep and trial (``tunix runs list``
    groups by it), then tell the sweep where the run is."""
    if not os.environ.get(PROGRESS_ENV):
        return
    marker = {"sweep": os.environ[SWEEP_ENV], "trial": int(os.environ[TRIAL_ENV])}
    run.sweep_trial_path.write_text(json.dumps(marker) + "\n", encoding="utf-8")
    _report({"run_dir": str(run.path)})


@hookimpl
def tunix_train_step_end(step: int, metrics: dict[str, float], run: RunDirectory) -> None:
    """In a trial: the step's metrics (the training loss, and ``eval/...`` on a step that
    ``eval.during_training`` evaluated), among them the one the sweep prunes on."""
    _report({"step": step, **metrics})
