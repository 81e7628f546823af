"""The judge on the judging-mix suite's open items: each is scored against its rubric
(``RUBRIC_PROMPT``), in batches, per domain with standard errors, and a reply without a
score leaves its item unscored, never scored.

The judge model is not under test: a scripted stand-in returns fixed verdicts per domain
(the parsing and the aggregation are), and the tiny random model, whose replies hold no
score, shows that unscored replies are counted as such.
"""

from __future__ import annotations

import statistics
from typing import ClassVar

import pytest

import tunix_eval.plugin
from tunix_core.data.loading import load_split
from tunix_core.evaluation import example_meta
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, get_host, plugin_module
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.commands import _load_evaluators
from tunix_eval.judge import RUBRIC_PROMPT, JudgeEvaluator, JudgeOptions
from tunix_eval.judging_mix import NO_JUDGE_NOTE, JudgingMixEvaluator

SUITE = {item.id: item for item in load_split(
    get_host().datasets, "judging-mix", "eval", seed=0, options={}, limit=None,
    transforms=get_host().transforms,
)}  # fmt: skip


def predict(item_id: str, completion: str) -> Prediction:
    item = SUITE[item_id]
    return Prediction(item_id, f"<start_of_turn>user\n{item.question}<end_of_turn>\n",
                      completion, item.answer, example_meta(item))  # fmt: skip


def answer(text: str) -> str:
    return f"<reasoning>I planned it.</reasoning><answer>{text}</answer>"


PREDICTIONS = [
    predict("jm-creative-01", answer("A short story.")),
    predict("jm-creative-02", answer("Another story.")),
    predict("jm-creative-03", answer("A poem.")),
    predict("jm-ideation-01", answer("Three ideas.")),
    predict("jm-ideation-02", answer("UNPARSEABLE")),  # the judge's reply holds no score
    predict("jm-math-01", answer("22")),  # verifiable: judged against its reference answer
]
# The stand-in's verdict per story: the creative items get 5, 4 and 2; ideation 3.
VERDICTS = {"A short story.": "SCORE: 5", "Another story.": "**Score**: 4/5",
            "A poem.": "2 out of 5", "Three ideas.": "SCORE: 3",
            "UNPARSEABLE": "I would rather not grade this."}  # fmt: skip


class ScriptedJudge:
    """Returns a fixed verdict for each response; answer items get ``SCORE: 5``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def generate(self, prompts, *, max_new_tokens):
        self.batches.append(list(prompts))
        replies = []
        for prompt in prompts:
            verdict = next((v for k, v in VERDICTS.items() if f"<answer>{k}</answer>" in prompt),
                           "SCORE: 5")  # fmt: skip
            replies.append(verdict)
        return replies


class ScriptedBackend:
    model: ClassVar[ScriptedJudge] = ScriptedJudge()

    def validate(self, spec):
        pass

    def load(self, spec, *, progress):
        return ScriptedBackend.model


@hookimpl
def _register_backends(registry):
    registry.register("scripted-judge", f"{__name__}:ScriptedBackend")


@pytest.fixture
def context() -> RunContext:
    ScriptedBackend.model = ScriptedJudge()
    host = PluginHost()
    host.add_plugin(plugin_module("test-plugin", tunix_register_backends=_register_backends),
                    "scripted", "t")  # fmt: skip
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")  # the evaluators and answer checks
    host.fill_registries()
    return RunContext(host)


def judge(**options) -> JudgeEvaluator:
    return JudgeEvaluator(JudgeOptions(backend="scripted-judge", preset="stand-in",
                                       weights="random", **options))  # fmt: skip


def test_open_items_are_scored_by_their_rubric_per_domain_with_standard_errors(context):
    report = judge(batch_size=2).evaluate(PREDICTIONS, context=context)
    rubric = report.metrics["rubric"]
    creative = rubric["by_domain"]["creative_writing"]
    assert (creative["n"], creative["scored"], creative["unscored"]) == (3, 3, 0)
    assert creative["mean_score"] == pytest.approx(11 / 3)
    assert creative["mean_score_stderr"] == pytest.approx(statistics.stdev([5, 4, 2]) / 3**0.5)
    assert creative["passed"]["count"] == 2 and creative["passed"]["rate"] == pytest.approx(2 / 3)
    assert creative["passed"]["stderr"] == pytest.approx((2 / 3 * 1 / 3 / 3) ** 0.5)
    ideation = rubric["by_domain"]["ideation"]
    # The reply without a score is unscored: not a 1, not a 0, not in the mean.
    assert (ideation["n"], ideation["scored"], ideation["unscored"]) == (2, 1, 1)
    assert ideation["mean_score"] == 3 and ideation["mean_score_stderr"] is None
    assert rubric["overall"]["unscored"] == 1 and rubric["overall"]["scored"] == 4
    assert report.per_item["jm-ideation-02"]["rubric_score"] is None
    assert report.per_item["jm-creative-01"]["rubric_score"] == 5
    # The math item is judged against its answer, apart from the rubric items.
    assert report.metrics["n"] == 1 and report.per_item["jm-math-01"]["judge_score"] == 5
    sent = [prompt for batch in ScriptedBackend.model.batches for prompt in batch]
    rubric_prompts = [p for p in sent if "open task against its rubric" in p]
    assert len(rubric_prompts) == 5 and all("A good answer must:" in p for p in rubric_prompts)
    assert [len(b) for b in ScriptedBackend.model.batches] == [1, 2, 2, 1]


def test_the_judging_mix_scorecard_holds_the_judges_rubric_scores_once(context):
    evaluators = _load_evaluators(context.host, ["judging-mix", "judge"],
                                  JudgeOptions(backend="scripted-judge", preset="stand-in"))  # fmt: skip
    mix, the_judge = evaluators
    assert isinstance(mix, JudgingMixEvaluator) and mix.judge is the_judge
    metrics = mix.evaluate(PREDICTIONS, context=context).metrics
    the_judge.evaluate(PREDICTIONS, context=context)
    creative = metrics["by_domain"]["creative_writing"]["rubric"]
    assert creative["mean_score"] == pytest.approx(11 / 3) and creative["unscored"] == 0
    assert metrics["by_domain"]["ideation"]["rubric"]["unscored"] == 1
    assert "rubric" not in metrics["by_domain"]["math"]  # no open items there
    assert metrics["overall"]["rubric"]["n"] == 5
    assert metrics["judge_configured"] is True and NO_JUDGE_NOTE not in metrics["notes"]
    assert "1 of 5 open item(s) unscored" in " ".join(metrics["notes"])
    sent = [prompt for batch in ScriptedBackend.model.batches for prompt in batch]
    assert len(sent) == len(set(sent)) == 6  # each prompt went to the model once


def test_the_rubric_prompt_asks_for_a_score_against_must_and_avoid():
    assert "{expected}" in RUBRIC_PROMPT and "SCORE: <a number from 1 to 5>" in RUBRIC_PROMPT


def test_a_tiny_random_judge_leaves_every_open_item_unscored():
    """The tiny random model's replies hold no score: every open item is unscored, the
    means and rates are None, and nothing is scored as 0 or 1."""
    open_items = [p for p in PREDICTIONS if p.meta.get("section") == "open"]
    tiny = JudgeEvaluator(JudgeOptions(backend="jax", preset="tiny-gemma3", weights="random",
                                       max_new_tokens=8, batch_size=4))  # fmt: skip
    mix = JudgingMixEvaluator(judge=tiny, reference_free=lambda q, c: {})
    metrics = mix.evaluate(open_items, context=RunContext(get_host())).metrics
    rubric = metrics["overall"]["rubric"]
    assert (rubric["n"], rubric["scored"], rubric["unscored"]) == (5, 0, 5)
    assert rubric["mean_score"] is None and rubric["passed"]["rate"] is None
    assert "5 of 5 open item(s) unscored" in " ".join(metrics["notes"])
