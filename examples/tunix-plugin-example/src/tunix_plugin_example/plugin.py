"""Registration: targets are strings, so loading the plugin imports none of them. Event
hooks too: the per-step logger and the run timer, whose modules are light enough to import
here (a hook that needs a heavy library imports it on its first call instead)."""

from typing import Any

from tunix_core.hookspecs import hookimpl
from tunix_core.protocols import (
    AnswerCheckRegistry,
    DatasetRegistry,
    EvaluatorRegistry,
    RewardRegistry,
)
from tunix_core.rundir import RunDirectory
from tunix_plugin_example.run_timer import finish, record, start
from tunix_plugin_example.step_log import log_step


@hookimpl
def tunix_register_datasets(registry: DatasetRegistry) -> None:
    registry.register(
        "digit-sum",
        "tunix_plugin_example.digit_sum:DigitSumDataset",
        description="Sum the digits of a number, one running sum per step (example plugin).",
    )


@hookimpl
def tunix_register_evaluators(registry: EvaluatorRegistry) -> None:
    registry.register(
        "answer-brevity",
        "tunix_plugin_example.brevity:AnswerBrevity",
        description="Share of answers that are short (example plugin).",
    )


@hookimpl
def tunix_register_answer_checks(registry: AnswerCheckRegistry) -> None:
    registry.register(
        "integer",
        "tunix_plugin_example.integer:integer",
        description="The expected whole number in plain digits (example plugin).",
    )


@hookimpl
def tunix_register_rewards(registry: RewardRegistry) -> None:
    registry.register(
        "digit_sum_bonus",
        "tunix_plugin_example.digit_sum_bonus:digit_sum_bonus",
        description="Share of right running-sum steps on digit-sum items (example plugin).",
    )


@hookimpl
def tunix_train_step_end(step: int, metrics: dict[str, float], run: RunDirectory) -> None:
    log_step(run.path, step, metrics)


@hookimpl
def tunix_run_started(run: RunDirectory, config: dict[str, Any]) -> None:
    start(run)


@hookimpl
def tunix_stage_finished(run: RunDirectory, stage: str, seconds: float) -> None:
    record(run, stage, seconds)


@hookimpl
def tunix_run_finished(run: RunDirectory, status: str, error: BaseException | None) -> None:
    finish(run, status)
