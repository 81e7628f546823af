"""The ``judge`` and ``relevance`` rewards and the ``hacking`` evaluator.

The judge reward is tested with a stand-in judge model loaded through a real backend
registry (a rule-based grader, as in test_judge.py: the backend protocol is what lets
any model judge) and with the tiny random Gemma, whose replies hold no score: NaN."""

from __future__ import annotations

import json
import math
import re
from typing import ClassVar

import pytest

import tunix_eval.plugin
from tunix_core.data.render import render_prompt
from tunix_core.errors import ConfigError
from tunix_core.hookspecs import hookimpl
from tunix_core.layout import JUDGE_REWARD_CACHE
from tunix_core.plugins import PluginHost, get_host, plugin_module
from tunix_core.protocols import Prediction, RunContext
from tunix_core.rewards import load_rewards, score_loaded
from tunix_core.rundir import RunDirectory
from tunix_eval.hacking import HackingEvaluator
from tunix_eval.rewards import JudgeReward, relevance


class GradingModel:
    """Gives 5 when the response's <answer> equals the reference, 1 when not, and no
    score for a response that says "garbled"; records every batch it is asked."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def generate(self, prompts, *, max_new_tokens):
        self.batches.append(list(prompts))
        replies = []
        for prompt in prompts:
            reference = re.search(r"Reference answer:\n(.*?)\n\n", prompt, re.S)
            answer = re.search(r"<answer>(.*?)</answer>", prompt, re.S)
            if "garbled" in prompt:
                replies.append("I cannot grade this.")
            elif reference and answer and answer.group(1).strip() == reference.group(1).strip():
                replies.append("SCORE: 5")
            else:
                replies.append("Score: 1/5")
        return replies


class GradingBackend:
    model: ClassVar[GradingModel] = GradingModel()
    loads: ClassVar[int] = 0

    def validate(self, spec):
        if spec.preset == "no-such-preset":
            raise ConfigError("model.preset: unknown preset 'no-such-preset'")

    def load(self, spec, *, progress):
        GradingBackend.loads += 1
        return GradingBackend.model


@hookimpl
def _register_backends(registry):
    registry.register("grader", f"{__name__}:GradingBackend")


@pytest.fixture
def context() -> RunContext:
    host = PluginHost()
    host.add_plugin(plugin_module("grader-plugin", tunix_register_backends=_register_backends),
                    "grader", "t")  # fmt: skip
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")
    host.fill_registries()
    GradingBackend.model = GradingModel()
    GradingBackend.loads = 0
    return RunContext(host)


def wrap(answer: str) -> str:
    return f"<reasoning>Add.</reasoning><answer>{answer}</answer><end_of_turn>"


PROMPTS = [
    render_prompt("2 + 2?", "sys"),
    render_prompt("3 + 3?", "sys"),
    render_prompt("1 + 1?", "sys"),
]
COMPLETIONS = [wrap("4"), wrap("7"), "garbled"]
EXPECTED = ["4", "6", "2"]
GRADER = {"backend": "grader", "preset": "tiny-judge", "weights": "random", "batch_size": 2}


def judge_of(context: RunContext, **options) -> JudgeReward:
    rewards = load_rewards(context, {"judge": 1.0}, {"judge": {**GRADER, **options}},
                           field="trainer.options.reward_options")  # fmt: skip
    reward = rewards["judge"]
    assert isinstance(reward, JudgeReward)
    return reward


def call(reward: JudgeReward, context: RunContext, prompts=PROMPTS, completions=COMPLETIONS,
         expected=EXPECTED) -> list[float]:  # fmt: skip
    return reward(prompts, completions, expected, [{}] * len(prompts), context=context)


def test_the_judge_scores_in_batches_and_a_parse_failure_is_nan(context):
    reward = judge_of(context)
    scores = call(reward, context)
    assert scores[:2] == [1.0, 0.0] and math.isnan(scores[2])
    assert [len(batch) for batch in GradingBackend.model.batches] == [2, 1]
    # The NaN is left out of the combined reward, not counted as a score.
    combined = score_loaded(context, {"judge": reward}, {"judge": 1.0}, PROMPTS, COMPLETIONS,
                            EXPECTED, [{}] * 3)  # fmt: skip
    assert combined.total[:2] == [1.0, 0.0] and math.isnan(combined.total[2])


def test_verdicts_are_cached_by_prompt_completion_and_judge(context):
    reward = judge_of(context)
    call(reward, context)
    asked = len(GradingBackend.model.batches)
    # The same (prompt, completion) again, in another order and twice: no new question.
    again = call(reward, context, PROMPTS[::-1] + PROMPTS[:1], COMPLETIONS[::-1] + COMPLETIONS[:1],
                 EXPECTED[::-1] + EXPECTED[:1])  # fmt: skip
    assert len(GradingBackend.model.batches) == asked
    assert again[1:] == [0.0, 1.0, 1.0] and math.isnan(again[0])
    # Another rubric is another judge: asked anew.
    rubric = "Grade.\n{question}\nReference answer:\n{expected}\n\n{completion}\nSCORE: 1-5"
    other = judge_of(context, rubric=rubric)
    assert other.fingerprint != reward.fingerprint
    call(other, context, PROMPTS[:1], COMPLETIONS[:1], EXPECTED[:1])
    assert GradingBackend.model.batches[-1][0].startswith("<start_of_turn>user\nGrade.")
    assert GradingBackend.loads == 2  # once per judge, not per call


def test_a_resumed_run_reads_the_verdicts_back_from_the_run_folder(context, tmp_path):
    run = RunDirectory.create(tmp_path, "run", model_id="m", dataset="d", trainer="grpo",
                              config_path=None, command=["tunix", "run"])  # fmt: skip
    in_run = context.within(run, lambda _: None)
    first = call(judge_of(in_run), in_run)
    lines = (run.path / JUDGE_REWARD_CACHE).read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["score"] is None
    (run.path / JUDGE_REWARD_CACHE).write_text("\n".join(lines) + '\n{"key": "cut')  # a crash
    GradingBackend.model = GradingModel()
    second = call(judge_of(in_run), in_run)
    assert GradingBackend.model.batches == []
    assert second[:2] == first[:2] and math.isnan(second[2])
    # A verdict appended after the cut line stays readable.
    call(judge_of(in_run), in_run, PROMPTS[:1], [wrap("5")], EXPECTED[:1])
    last = (run.path / JUDGE_REWARD_CACHE).read_text().splitlines()[-1]
    assert json.loads(last)["score"] == 0.0


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"backend": "nope"}, "trainer.options.reward_options.judge.backend"),
        ({"preset": "no-such-preset"}, "trainer.options.reward_options.judge.preset"),
        ({"rubric": "Grade {answer}"}, "trainer.options.reward_options.judge.rubric"),
        ({"batch_size": 0}, "trainer.options.reward_options.judge.batch_size"),
        ({"temperature": 1.0}, "trainer.options.reward_options.judge.temperature"),
    ],
)
def test_bad_judge_options_name_their_field(context, options, field):
    with pytest.raises(ConfigError, match=re.escape(field)):
        judge_of(context, **options)


def test_a_judge_model_the_jax_backend_cannot_load_names_the_field():
    context = RunContext(get_host())
    with pytest.raises(ConfigError) as error:
        load_rewards(context, {"judge": 1.0},
                     {"judge": {"preset": "tiny-gemma3", "weights": "gguf:/no/such/judge.gguf"}},
                     field="trainer.options.reward_options")  # fmt: skip
    message = str(error.value)
    assert message.startswith("trainer.options.reward_options.judge.weights: ")
    assert "\n" not in message


def test_options_for_a_reward_that_takes_none_or_is_not_used_are_refused(context):
    with pytest.raises(ConfigError, match=r"reward_options\.format: reward 'format' takes no"):
        load_rewards(context, {"format": 1.0}, {"format": {"x": 1}}, field="reward_options")
    with pytest.raises(ConfigError, match=r"reward_options\.judge: options for a reward that is"):
        load_rewards(context, {"format": 1.0}, {"judge": {}}, field="reward_options")


def test_the_tiny_random_model_as_judge_gives_nan_never_a_score():
    context = RunContext(get_host())
    reward = load_rewards(context, {"judge": 1.0}, {"judge": {
        "preset": "tiny-gemma3", "weights": "random", "max_new_tokens": 8, "batch_size": 2,
        "disk_cache": False}})["judge"]  # fmt: skip
    scores = reward(PROMPTS, COMPLETIONS, EXPECTED, [{}] * 3, context=context)
    assert len(scores) == 3 and all(math.isnan(s) for s in scores)


def test_relevance_is_the_tfidf_cosine_of_completion_and_question(context):
    question = render_prompt("How many legs does a spider have?", "")
    on_topic = "<reasoning>A spider has eight legs.</reasoning><answer>8 legs</answer>"
    off_topic = "<reasoning>Paris is the capital of France.</reasoning><answer>8</answer>"
    copied = "<reasoning>How many legs does a spider have?</reasoning>"
    scores = relevance([question] * 4, [on_topic, off_topic, copied, ""], ["8"] * 4, [{}] * 4,
                       context=context)  # fmt: skip
    assert scores[1] == 0.0 and scores[3] == 0.0  # no shared term; nothing written
    assert 0.0 < scores[0] < scores[2] == pytest.approx(1.0)
    # By hand: terms minus stop words; the documents are the question and 4 completions.
    # on_topic shares "spider" (df 3) and "legs" (df 4) with the question {many, legs,
    # does, spider}: tf-idf weights use idf = ln(6 / (1 + df)) + 1.
    idf = {t: math.log(6 / (1 + df)) + 1 for t, df in
           {"many": 2, "does": 2, "legs": 3, "spider": 3, "eight": 1, "8": 2}.items()}  # fmt: skip
    q = {t: idf[t] for t in ("many", "legs", "does", "spider")}
    a = {"spider": idf["spider"], "eight": idf["eight"], "legs": 2 * idf["legs"], "8": idf["8"]}
    dot = sum(v * a.get(t, 0.0) for t, v in q.items())
    norm = math.sqrt(sum(v * v for v in q.values())) * math.sqrt(sum(v * v for v in a.values()))
    assert scores[0] == pytest.approx(dot / norm)


def test_the_hacking_evaluator_reports_each_check(context):
    prompt = render_prompt("What is 12 + 21?", "sys")
    predictions = [
        Prediction("honest", prompt, "<reasoning>12 + 21 = 33</reasoning><answer>33</answer>", "33"),
        Prediction("empty", prompt, "<answer>33</answer>", "33"),
        Prediction("copied", prompt, "<reasoning>What is 12 + 21?</reasoning><answer>33</answer>", "33"),
        Prediction("contradicts", prompt, "<reasoning>12 + 21 = 33</reasoning><answer>34</answer>", "33"),
    ]  # fmt: skip
    report = HackingEvaluator().evaluate(predictions, context=context)
    assert report.per_item["honest"] == {"empty_reasoning": False, "copied_reasoning": False,
                                         "answer_repeated": False, "duplicated_tags": False,
                                         "contradiction": False}  # fmt: skip
    assert report.per_item["empty"]["empty_reasoning"] is True
    assert report.per_item["copied"]["copied_reasoning"] is True
    assert report.per_item["contradicts"]["contradiction"] is True
    metrics = report.metrics
    assert metrics["n"] == 4 and metrics["any_flag_rate"] == 0.75
    # The copied reasoning's last number (21) contradicts its answer too.
    assert report.per_item["copied"]["contradiction"] is True
    assert metrics["flagged"]["contradiction"] == 2 and metrics["rates"]["empty_reasoning"] == 0.25
    assert metrics["contradiction_applicable"] == 3
