"""The LLM judge: its prompt, score parsing, aggregation and disagreements with accuracy.

The judge model is a small rule-based generator loaded through a real backend registry:
it grades by literal string equality (a deliberately naive model), so it disagrees with
the normalising ``accuracy`` rule on "1,234" vs "1234".
"""

from __future__ import annotations

import re
from typing import ClassVar

import pytest

import tunix_eval.plugin
from tunix_core.data.render import render_prompt
from tunix_core.errors import ConfigError
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.judge import (
    JUDGE_PROMPT,
    JudgeEvaluator,
    JudgeOptions,
    judge_prompt,
    parse_judge_score,
    question_of,
)


class LiteralJudgeModel:
    """Reads the reference and the response's <answer> out of the judge prompt."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def generate(self, prompts, *, max_new_tokens):
        self.batches.append(len(prompts))
        replies = []
        for prompt in prompts:
            reference = re.search(r"Reference answer:\n(.*?)\n\nResponse:", prompt, re.S).group(1)
            response = re.search(r"Response:\n(.*?)\n\nRubric:", prompt, re.S).group(1)
            answer = re.search(r"<answer>(.*?)</answer>", response, re.S)
            if "garbled" in response:
                replies.append("I cannot grade this one.")
            elif answer and answer.group(1).strip() == reference.strip():
                replies.append("**Score**: 5/5 - correct and well argued.")
            else:
                replies.append("The final answer is wrong.\nSCORE: 1")
        return replies


class RuleBackend:
    """A backend plugin whose every model is the literal judge."""

    specs: ClassVar[list] = []
    model: ClassVar[LiteralJudgeModel] = LiteralJudgeModel()

    def validate(self, spec):
        RuleBackend.specs.append(spec)

    def load(self, spec, *, progress):
        return RuleBackend.model


@hookimpl
def _register_backends(registry):
    registry.register("rules", f"{__name__}:RuleBackend")


@pytest.fixture
def host() -> PluginHost:
    host = PluginHost()
    host.add_plugin(plugin_module("test-plugin", tunix_register_backends=_register_backends), "rules", "t")
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")  # the answer checks
    host.fill_registries()
    RuleBackend.specs.clear()
    RuleBackend.model = LiteralJudgeModel()
    return host


def wrap(answer: str) -> str:
    return f"<reasoning>Think.</reasoning><answer>{answer}</answer><end_of_turn>"


PREDICTIONS = [
    Prediction("same", render_prompt("2 + 2?", "sys"), wrap("4"), "4"),
    Prediction("wrong", render_prompt("3 + 3?", "sys"), wrap("7"), "6"),
    Prediction("formatted", render_prompt("Sum?", "sys"), wrap("1,234"), "1234"),
    Prediction("garbled", "", "garbled output", "5"),
    Prediction("case", render_prompt("City?", "sys"), wrap("Paris"), "Paris"),
]


def test_scores_aggregate_and_disagreements(host):
    options = JudgeOptions(backend="rules", preset="tiny-judge", weights="random", batch_size=2)
    report = JudgeEvaluator(options).evaluate(PREDICTIONS, context=RunContext(host))
    items = report.per_item
    assert items["same"]["judge_score"] == 5 and items["same"]["judge_correct"] is True
    assert items["wrong"]["judge_score"] == 1 and items["wrong"]["agrees_with_accuracy"] is True
    assert items["garbled"]["judge_score"] is None and items["garbled"]["judge_correct"] is None
    # accuracy normalises "1,234" to 1234; the literal judge does not: a disagreement.
    formatted = items["formatted"]
    assert formatted["accuracy_correct"] is True and formatted["judge_correct"] is False
    assert formatted["agrees_with_accuracy"] is False
    metrics = report.metrics
    assert metrics["scored"] == 4 and metrics["parse_failures"] == 1
    assert metrics["score_histogram"] == {"1": 2, "2": 0, "3": 0, "4": 0, "5": 2}
    assert metrics["mean_score"] == pytest.approx(3.0)
    assert metrics["judged_correct_rate"] == pytest.approx(0.5)
    assert metrics["agreement_with_accuracy"] == pytest.approx(3 / 4)
    assert metrics["disagreements"] == 1 and metrics["disagreeing_ids"] == ["formatted"]
    assert metrics["accuracy_correct_judge_wrong"] == 1
    assert metrics["judge_correct_accuracy_wrong"] == 0
    assert RuleBackend.model.batches == [2, 2, 1]


def test_the_model_comes_from_the_backend_registry_once(host):
    options = JudgeOptions(backend="rules", preset="gemma3-1b-it", weights="gguf:/m.gguf")
    judge = JudgeEvaluator(options)
    judge.evaluate(PREDICTIONS[:1], context=RunContext(host))
    judge.evaluate(PREDICTIONS[:1], context=RunContext(host))
    (spec,) = RuleBackend.specs
    assert (spec.preset, spec.weights) == ("gemma3-1b-it", "gguf:/m.gguf")


def test_unknown_backend_names_what_is_installed(host):
    judge = JudgeEvaluator(JudgeOptions(backend="nope"))
    expected = "judge backend: Unknown model backend 'nope'. Installed: rules"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        judge.evaluate(PREDICTIONS[:1], context=RunContext(host))


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("SCORE: 4", 4),
        ("score:5", 5),
        ("**Score**: 3/5", 3),
        ("Score = 2", 2),
        ("The score is 4.", 4),
        ("I would give this 4 out of 5.", 4),
        ("4/5", 4),
        ("5\nThe answer matches.", 5),
        ("  2 - wrong answer", 2),
        ("SCORE: 9", None),  # outside the rubric
        ("Score: 10/10", None),
        ("The answer is 42.", None),
        ("", None),
        ("3.5", None),
    ],
)
def test_parse_judge_score(reply, score):
    assert parse_judge_score(reply) == score


def test_the_prompt_is_fixed_and_rendered_as_a_chat_turn():
    prompt = judge_prompt(PREDICTIONS[1])
    assert prompt.startswith("<start_of_turn>user\nYou are grading")
    assert prompt.endswith("<end_of_turn>\n<start_of_turn>model\n")
    assert "Problem:\nsys\n\n3 + 3?\n\nReference answer:\n6\n\n" in prompt
    assert "<answer>7</answer>" in prompt and "<answer>7</answer><end_of_turn>" not in prompt
    assert JUDGE_PROMPT.splitlines()[-1] in prompt
    assert "(not given)" in judge_prompt(PREDICTIONS[3])
    runaway = Prediction("x", "", "a" * 10_000, "1")
    assert len(judge_prompt(runaway)) < 6_000


def test_question_of():
    assert question_of(render_prompt("What?", "Be brief.")) == "Be brief.\n\nWhat?"
    assert question_of("plain question") == "plain question"


def test_options_from_the_environment():
    options = JudgeOptions.from_env({"TUNIX_JUDGE_PRESET": "gemma2-2b-it",
                                     "TUNIX_JUDGE_BATCH_SIZE": "4", "TUNIX_JUDGE_WEIGHTS": ""})  # fmt: skip
    assert (options.preset, options.batch_size, options.weights) == ("gemma2-2b-it", 4, "default")
    assert JudgeOptions.from_env({}) == JudgeOptions()
    with pytest.raises(ConfigError, match="TUNIX_JUDGE_BATCH_SIZE: expected a whole number"):
        JudgeOptions.from_env({"TUNIX_JUDGE_BATCH_SIZE": "many"})
    with pytest.raises(ConfigError, match="pass_score"):
        JudgeOptions.from_env({"TUNIX_JUDGE_PASS_SCORE": "7"})


def test_the_model_spec_carries_the_options_and_a_bad_dtype_is_refused():
    spec = JudgeOptions(preset="gemma3-1b-it", tokenizer="/t.model", dtype="bfloat16").spec()
    assert (spec.preset, spec.tokenizer, spec.dtype) == ("gemma3-1b-it", "/t.model", "bfloat16")
    with pytest.raises(ConfigError, match="judge options from TUNIX_JUDGE_"):
        JudgeOptions.from_env({"TUNIX_JUDGE_DTYPE": "float8"})
