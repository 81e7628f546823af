"""tunix-eval's plugin: the ``format``, ``accuracy``, ``trace`` and ``judge`` evaluators
and the ``eval``, ``compare`` and ``runs`` commands. Targets are lazy strings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunix_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

    from tunix_core.registry import EvaluatorRegistry

EVALUATORS = {
    "format": ("tunix_eval.format:FormatEvaluator",
               "exact competition format under a token budget, plus softer tag counts"),
    "accuracy": ("tunix_eval.accuracy:AccuracyEvaluator",
                 "answer in <answer> vs the expected one after normalisation, per category"),
    "trace": ("tunix_eval.trace:TraceEvaluator",
              "reasoning steps and length; correct answers stated in their reasoning"),
    "judge": ("tunix_eval.judge:JudgeEvaluator",
              "rubric LLM-as-judge through any installed model (off by default)"),
}  # fmt: skip


@hookimpl
def tunix_register_evaluators(registry: EvaluatorRegistry) -> None:
    for name, (target, description) in EVALUATORS.items():
        registry.register(name, target, description=description)


@hookimpl
def tunix_register_commands(cli: click.Group) -> None:
    from tunix_eval.commands import compare_command, eval_command, runs

    for command in (eval_command, compare_command, runs):
        cli.add_command(command)
