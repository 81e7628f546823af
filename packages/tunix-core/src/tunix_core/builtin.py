"""The core's own plugin: it drives the built-in training loggers
(:mod:`tunix_core.loggers`) through the same hooks every third-party plugin uses. The
loggers' modules are imported on a run's first hook call: they parse the config (cattrs),
which would slow every ``tunix`` start, since the host loads this plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunix_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from tunix_core.rundir import RunDirectory


@hookimpl
def tunix_run_started(run: RunDirectory, config: dict[str, Any]) -> None:
    from tunix_core.loggers import open_run_loggers  # startup: see the module docstring

    open_run_loggers(run, config)


@hookimpl
def tunix_train_step_end(step: int, metrics: dict[str, float], run: RunDirectory) -> None:
    from tunix_core.loggers import log_train_step  # startup: see the module docstring

    log_train_step(run, step, metrics)


@hookimpl
def tunix_stage_finished(run: RunDirectory, stage: str, seconds: float) -> None:
    from tunix_core.loggers import log_evaluation  # startup: see the module docstring

    log_evaluation(run, stage)


@hookimpl
def tunix_run_finished(run: RunDirectory, status: str, error: BaseException | None) -> None:
    from tunix_core.loggers import close_run_loggers  # startup: see the module docstring

    close_run_loggers(run, status)
