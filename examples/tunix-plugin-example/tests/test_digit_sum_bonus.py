"""The example plugin's reward, alone and through the reward registry."""

from __future__ import annotations

import math

from tunix_core.plugins import get_host
from tunix_core.protocols import RunContext
from tunix_plugin_example.digit_sum_bonus import digit_sum_bonus

DIGIT_SUM = {"category": "digit_sum"}


def test_digit_sum_bonus_is_the_share_of_right_steps():
    completions = [
        "<reasoning>1 + 2 = 3\n3 + 4 = 7</reasoning><answer>7</answer>",
        "<reasoning>1 + 2 = 3\n3 + 4 = 8</reasoning><answer>8</answer>",
        "<reasoning>The answer is 7.</reasoning><answer>7</answer>",  # no step to judge
        "<reasoning>1 + 2 = 3</reasoning><answer>3</answer>",  # another dataset's item
    ]
    meta = [DIGIT_SUM, DIGIT_SUM, DIGIT_SUM, {"category": "arithmetic"}]
    got = digit_sum_bonus(["q"] * 4, completions, ["7", "7", "7", "3"], meta, context=RunContext(get_host()))
    assert got[:2] == [1.0, 0.5]
    assert math.isnan(got[2]) and math.isnan(got[3])


def test_digit_sum_bonus_is_registered_through_the_hook():
    entry = get_host().rewards.entry("digit_sum_bonus")
    assert entry.distribution == "tunix-plugin-example"
    assert entry.load() is digit_sum_bonus
