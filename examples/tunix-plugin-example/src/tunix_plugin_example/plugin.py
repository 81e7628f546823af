"""Registration only: targets are strings, so loading the plugin imports nothing else."""

from tunix_core.hookspecs import hookimpl
from tunix_core.registry import AnswerCheckRegistry, DatasetRegistry, EvaluatorRegistry


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
