"""tunix-eval's plugin: the ``format``, ``accuracy``, ``trace``, ``judge``, ``hacking``,
``code-exec`` and ``judging-mix`` evaluators, the built-in answer checks and rewards, and the ``eval``, ``compare``, ``runs``,
``report``, ``distill``, ``pairs``, ``generate`` and ``chat`` commands. Targets are lazy strings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunix_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from tunix_core.command_group import TunixGroup
    from tunix_core.protocols import AnswerCheckRegistry, EvaluatorRegistry, RewardRegistry

EVALUATORS = {
    "format": ("tunix_eval.format:FormatEvaluator",
               "exact competition format under a token budget, plus softer tag counts"),
    "accuracy": ("tunix_eval.accuracy:AccuracyEvaluator",
                 "answer in <answer> vs the expected one after normalisation, per category"),
    "trace": ("tunix_eval.trace:TraceEvaluator",
              "reasoning steps and length; correct answers stated in their reasoning"),
    "judge": ("tunix_eval.judge:JudgeEvaluator",
              "rubric LLM-as-judge through any installed model (off by default)"),
    "judging-mix": ("tunix_eval.judging_mix:JudgingMixEvaluator",
                    "judging-mix suite: per domain, strict format, token limit, answers of "
                    "verifiable items, reference-free checks"),
    "hacking": ("tunix_eval.hacking:HackingEvaluator",
                "reward-hacking checks: empty or copied reasoning, repeated answer or tags, "
                "an answer that contradicts the reasoning"),
    "code-exec": ("tunix_eval.code_exec:CodeExecEvaluator",
                  "runs answer code against the item's unit tests, pass@1 (off by default: "
                  "it executes model output)"),
}  # fmt: skip


@hookimpl
def tunix_register_evaluators(registry: EvaluatorRegistry) -> None:
    for name, (target, description) in EVALUATORS.items():
        registry.register(name, target, description=description)


ANSWER_CHECKS = {
    "auto": ("tunix_eval.normalize:check_auto",
             "the default: casefold, else yes_no, number or list by the expected answer"),
    "exact": ("tunix_eval.normalize:check_exact",
              "equal after cleanup; case and order significant"),
    "casefold": ("tunix_eval.normalize:check_casefold",
                 "equal after cleanup and case folding"),
    "number": ("tunix_eval.normalize:check_number", "one number of equal value"),
    "yes_no": ("tunix_eval.normalize:check_yes_no",
               "a yes/no word of the right polarity, alone or before punctuation"),
    "list": ("tunix_eval.normalize:check_list", "the same items in the same order"),
}  # fmt: skip


@hookimpl
def tunix_register_answer_checks(registry: AnswerCheckRegistry) -> None:
    for name, (target, description) in ANSWER_CHECKS.items():
        registry.register(name, target, description=description)


REWARDS = {
    "format": ("tunix_eval.rewards:format_strict", "1 for the exact competition format, else 0"),
    "format_approx": ("tunix_eval.rewards:format_approx",
                      "0.25 per format tag present once and in order"),
    "answer": ("tunix_eval.rewards:answer",
               "1 for a correct answer, up to 0.5 for a close number; NaN without one"),
    "length": ("tunix_eval.rewards:length",
               "0 up to 1024 words, then down to -1 at twice that"),
    "repetition": ("tunix_eval.rewards:repetition", "minus the share of repeated word 4-grams"),
    "relevance": ("tunix_eval.rewards:relevance",
                  "TF-IDF cosine of the completion and the question, model-free"),
    "judge": ("tunix_eval.rewards:judge",
              "rubric LLM-as-judge score in [0, 1]; NaN when the reply has no score"),
}  # fmt: skip


@hookimpl
def tunix_register_rewards(registry: RewardRegistry) -> None:
    for name, (target, description) in REWARDS.items():
        registry.register(name, target, description=description)


COMMANDS = {
    "eval": ("tunix_eval.commands:eval_command",
             "Generate and score predictions (a run, a model, or a JSONL of completions)."),
    "compare": ("tunix_eval.commands:compare_command",
                "Before/after table of two evaluations and the items that flipped."),
    "runs": ("tunix_eval.commands:runs", "Runs under a folder, ranked by primary_score."),
    "report": ("tunix_eval.commands:report_command",
               "A run's report: one self-contained HTML page."),
    "distill": ("tunix_eval.distill_command:distill_command",
                "A teacher model's checked answers to a dataset, as a new JSONL dataset."),
    "pairs": ("tunix_eval.pairs_command:pairs_command",
              "On-policy preference pairs from a run's model, for dpo, simpo and orpo."),
    "generate": ("tunix_eval.chat:generate",
                 "Answer one question with a run's model or a preset."),
    "chat": ("tunix_eval.chat:chat", "Talk with a run's model or a preset in the terminal."),
}  # fmt: skip


@hookimpl
def tunix_register_commands(cli: TunixGroup) -> None:
    for name, (target, short_help) in COMMANDS.items():
        # `eval` generates with a model, whose large buffers want huge pages.
        cli.add_lazy_command(name, target, short_help, huge_pages=name == "eval")
