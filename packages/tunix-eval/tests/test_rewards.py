"""The built-in rewards on hand-computed cases, and their weighting by tunix_core.rewards.score_rewards."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tunix_core.errors import DataError, PluginError
from tunix_core.plugins import PluginHost, get_host
from tunix_core.protocols import RewardRegistry, RunContext
from tunix_core.registry import RegistryError, UnknownNameError
from tunix_core.rewards import score_rewards
from tunix_eval.plugin import tunix_register_rewards
from tunix_eval.rewards import (
    LengthPenalty,
    answer,
    format_approx,
    format_strict,
    repetition,
)

GOOD = "<reasoning>Fish have fins, not legs.</reasoning>\n<answer>No</answer>"


def score(reward: Any, completions: list[str], expected: list[str] | None = None,
          meta: list[Mapping[str, Any]] | None = None) -> list[float]:  # fmt: skip
    n = len(completions)
    return list(reward(["q"] * n, completions, expected or ["x"] * n, meta or [{}] * n,
                       context=RunContext(get_host())))


def test_format_strict_is_one_only_for_the_exact_format():
    assert score(format_strict, [GOOD, "Answer: no", GOOD + " trailing"]) == [1.0, 0.0, 0.0]


def test_format_approx_credits_each_tag_present_once_and_in_order():
    assert score(format_approx, [
        GOOD,
        "<reasoning>thinking</reasoning> no answer block",
        "<answer>No</answer><reasoning>late</reasoning>",  # reasoning tags first: answer's out of order
        "<reasoning>a</reasoning><reasoning>b</reasoning><answer>x</answer>",  # twice: no credit
        "plain text",
    ]) == [1.0, 0.5, 0.5, 0.5, 0.0]  # fmt: skip


def test_answer_uses_the_items_answer_check_like_no_fish_can_walk():
    completions = [
        "<reasoning>No fish can walk.</reasoning><answer>No.</answer>",
        "<reasoning>Some can.</reasoning><answer>Yes</answer>",
        "<reasoning>Hmm.</reasoning>",  # no answer block
    ]
    meta = [{"answer_match": "yes_no"}] * 3
    assert score(answer, completions, ["no"] * 3, meta) == [1.0, 0.0, 0.0]


def test_answer_gives_scaled_closeness_for_a_wrong_number():
    completions = ["<answer>42</answer>", "<answer>40</answer>", "<answer>100</answer>",
                   "<answer>0.5</answer>", "<answer>fish</answer>"]  # fmt: skip
    # 40 vs 42: 0.5 * (1 - 2/42); 100 vs 42: too far; 0.5 vs 0: 0.5 * (1 - 0.5/max(1, 0)).
    expected = ["42", "42", "42", "0", "42"]
    got = score(answer, completions, expected)
    assert got == pytest.approx([1.0, 0.5 * (1 - 2 / 42), 0.0, 0.25, 0.0])


def test_answer_is_nan_without_an_expected_answer():
    got = score(answer, ["<answer>7</answer>", "<answer>7</answer>"], ["", "7"])
    assert math.isnan(got[0]) and got[1] == 1.0


def test_answer_names_the_item_when_its_check_cannot_judge_the_expected_answer():
    with pytest.raises(DataError, match=r"item 'q17'.*yes_no"):
        score(answer, ["<answer>no</answer>"], ["maybe"], [{"id": "q17", "answer_match": "yes_no"}])


def test_length_is_zero_up_to_the_budget_then_falls_to_minus_one_at_twice_it():
    reward = LengthPenalty(budget=10)
    texts = [" ".join(["w"] * n) for n in (0, 10, 15, 20, 40)]
    assert score(reward, texts) == [0.0, 0.0, -0.5, -1.0, -1.0]


def test_length_counts_with_a_given_tokenizer_and_ignores_text_after_end_of_turn():
    reward = LengthPenalty(budget=4, count_tokens=len)  # one token per character
    assert score(reward, ["abcdef", "abcd<end_of_turn>" + "x" * 50]) == [-0.5, 0.0]
    with pytest.raises(ValueError, match="budget must be >= 1"):
        LengthPenalty(budget=0)


def test_repetition_penalises_a_looping_completion_and_not_a_clean_one():
    looping = "a b c d " * 3  # 12 words, 9 4-grams, 4 distinct: 5 repeats
    clean = "Fish have fins and gills, so they swim rather than walk."
    assert score(repetition, [looping, clean, "too short"]) == pytest.approx([-5 / 9, 0.0, 0.0])


def test_tunix_register_rewards_registers_the_builtins():
    registry = RewardRegistry()
    tunix_register_rewards(registry)
    assert registry.names() == ["answer", "format", "format_approx", "judge", "length",
                                "relevance", "repetition"]
    assert registry.load("format") is format_strict


def test_the_builtins_are_installed_through_the_plugin_host():
    rewards = get_host().rewards
    assert {"format", "format_approx", "answer", "length", "repetition"} <= set(rewards.names())
    assert rewards.entry("answer").distribution == "tunix-eval"
    assert rewards.load("length").budget == 1024


def constant(value: float) -> Any:
    def reward(prompts: Sequence[str], completions: Sequence[str], expected: Sequence[str],
               meta: Sequence[Mapping[str, Any]], *, context: RunContext) -> list[float]:  # fmt: skip
        return [value] * len(completions)

    return reward


def nan_for_first(prompts: Sequence[str], completions: Sequence[str], expected: Sequence[str],
                  meta: Sequence[Mapping[str, Any]], *, context: RunContext) -> list[float]:  # fmt: skip
    return [math.nan, *([0.0] * (len(completions) - 1))]


ONE, HALF = constant(1.0), constant(0.5)


def rewards_context(**targets: str) -> RunContext:
    """A run context whose host has only the rewards ``targets`` (name -> target)."""
    host = PluginHost()
    for name, target in targets.items():
        host.rewards.register(name, target)
    return RunContext(host)


def test_score_rewards_weights_and_renormalises_over_the_rewards_that_apply():
    context = rewards_context(**{"one": f"{__name__}:ONE", "nan-first": f"{__name__}:nan_for_first"})
    got = score_rewards(context, {"one": 1.0, "nan-first": 3.0}, ["p"] * 2, ["a", "b"],
                        ["e"] * 2, [{}] * 2)  # fmt: skip
    # First: only "one" applies -> 1.0. Second: (1*1 + 3*0) / 4.
    assert got.total == [1.0, 0.25]
    assert got.by_reward["one"] == [1.0, 1.0]
    assert math.isnan(got.by_reward["nan-first"][0]) and got.by_reward["nan-first"][1] == 0.0


def test_score_rewards_is_nan_where_no_reward_applies():
    context = rewards_context(**{"nan-first": f"{__name__}:nan_for_first"})
    got = score_rewards(context, {"nan-first": 1.0}, ["p"], ["a"], ["e"], [{}])
    assert math.isnan(got.total[0])


def test_score_rewards_uses_the_installed_builtins():
    got = score_rewards(RunContext(get_host()), {"format": 1.0, "answer": 1.0}, ["q", "q"],
                        [GOOD, "<answer>yes</answer>"], ["no", "no"], [{}, {}])  # fmt: skip
    assert got.total == [1.0, 0.0]


def test_score_rewards_names_an_unknown_reward_and_lists_the_installed_ones():
    context = rewards_context(half=f"{__name__}:HALF")
    with pytest.raises(UnknownNameError, match=r"Unknown reward 'halv'\. Installed: half\."):
        score_rewards(context, {"halv": 1.0}, ["p"], ["a"], ["e"], [{}])


@pytest.mark.parametrize("weight", [0.0, -1.0, math.inf, math.nan, 1e308, 1e6 * 1.01, True])
def test_score_rewards_rejects_a_weight_that_is_not_positive_and_bounded(weight):
    context = rewards_context(half=f"{__name__}:HALF")
    with pytest.raises(ValueError, match=r"reward 'half': weight must be a positive number up "
                                         r"to 1e\+06, got"):  # fmt: skip
        score_rewards(context, {"half": weight}, ["p"], ["a"], ["e"], [{}])


def test_the_largest_weights_still_give_a_perfect_completion_a_reward_of_one():
    got = score_rewards(RunContext(get_host()), {"format": 1e6, "answer": 1e6}, ["q"], [GOOD],
                        ["no"], [{}])  # fmt: skip
    assert got.total == [1.0]


HUGE, INFINITE = constant(1e308), constant(math.inf)


def test_a_reward_that_is_infinite_or_too_large_to_weight_is_a_plugin_error():
    context = rewards_context(huge=f"{__name__}:HUGE", infinite=f"{__name__}:INFINITE")
    with pytest.raises(PluginError, match=r"reward 'infinite' scored completion 0 inf"):
        score_rewards(context, {"infinite": 1.0}, ["p"], ["a"], ["e"], [{}])
    with pytest.raises(PluginError, match=r"the weighted reward of completion 0 is inf"):
        score_rewards(context, {"huge": 1e6}, ["p"], ["a"], ["e"], [{}])


def test_score_rewards_rejects_unparallel_inputs():
    context = rewards_context(half=f"{__name__}:HALF")
    with pytest.raises(ValueError, match="must be parallel"):
        score_rewards(context, {"half": 1.0}, ["p"], ["a", "b"], ["e"], [{}])


def test_reward_names_are_validated():
    with pytest.raises(RegistryError, match="invalid reward name 'Bad Name'"):
        RewardRegistry().register("Bad Name", "m:f")
