"""The core's own plugin: it registers the built-in dataset providers, the answer checks
their items name (``code``, ``reasoning-gym``) and the row transforms, and drives the
built-in training loggers (:mod:`tunix_core.loggers`), through the same hooks every
third-party plugin uses. The loggers' modules are imported on a run's first hook call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunix_core.data.providers import register_builtin_answer_checks, register_builtin_datasets
from tunix_core.data.transforms import register_builtin_transforms
from tunix_core.hookspecs import hookimpl
from tunix_core.registry import AnswerCheckRegistry, DatasetRegistry, TransformRegistry

if TYPE_CHECKING:
    from tunix_core.rundir import RunDirectory


@hookimpl
def tunix_register_datasets(registry: DatasetRegistry) -> None:
    register_builtin_datasets(registry)


@hookimpl
def tunix_register_answer_checks(registry: AnswerCheckRegistry) -> None:
    register_builtin_answer_checks(registry)


@hookimpl
def tunix_register_transforms(registry: TransformRegistry) -> None:
    register_builtin_transforms(registry)


@hookimpl
def tunix_run_started(run: RunDirectory, config: dict[str, Any]) -> None:
    from tunix_core.loggers import open_run_loggers

    open_run_loggers(run, config)


@hookimpl
def tunix_train_step_end(step: int, metrics: dict[str, float], run: RunDirectory) -> None:
    from tunix_core.loggers import log_train_step

    log_train_step(run, step, metrics)


@hookimpl
def tunix_stage_finished(run: RunDirectory, stage: str, seconds: float) -> None:
    from tunix_core.loggers import log_evaluation

    log_evaluation(run, stage)


@hookimpl
def tunix_run_finished(run: RunDirectory, status: str, error: BaseException | None) -> None:
    from tunix_core.loggers import close_run_loggers

    close_run_loggers(run, status)
