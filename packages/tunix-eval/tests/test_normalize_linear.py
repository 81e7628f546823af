"""Answer cleaning and parsing take time linear in the answer: a long, hostile answer (a
model that repeats punctuation until max_new_tokens) must not stall an evaluation."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunix_core.protocols import AnswerOptions
from tunix_eval.normalize import (
    check_auto,
    check_yes_no,
    clean_answer,
    mentioned_in,
    parse_quantity,
    split_list,
    strip_trailing_punctuation,
)

LENGTH = 80_000
OPTIONS = AnswerOptions()

# All but "only dots" (the plain case) were quadratic before: 30 s to minutes each here.
HOSTILE_ANSWERS = {
    "dots then a letter": "." * LENGTH + "a",
    "dots then a digit": "." * LENGTH + "1",
    "spaced dots then a slash": ". " * (LENGTH // 2) + "/",
    "commas then a slash": ", " * (LENGTH // 2) + "/",
    "only dots": "." * LENGTH,
}
ENTRY_POINTS: dict[str, Callable[[str], object]] = {
    "clean_answer": clean_answer,
    "number check": lambda text: check_auto(text, "1 1/2 km", OPTIONS),
    "list check": lambda text: check_auto(text, "a, b", OPTIONS),
    "yes/no check": lambda text: check_yes_no(text, "yes", OPTIONS),
    "parse_quantity": lambda text: parse_quantity(clean_answer(text)),
    "mentioned_in": lambda text: mentioned_in("5", text),
}


# The helpers take cleaned text but are public: raw text with long whitespace runs made
# their adjacent ``\s*`` backtrack (quadratic and worse).
HOSTILE_HELPER_CALLS: dict[str, Callable[[], object]] = {
    "parse_quantity before a slash": lambda: parse_quantity("1" + " " * LENGTH + "/x"),
    "parse_quantity in a unit": lambda: parse_quantity("1 km" + " " * LENGTH + " / km / km / x"),
    "split_list of spaces": lambda: split_list(" " * LENGTH + "x"),
}


def seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


@pytest.mark.parametrize("answer", HOSTILE_ANSWERS.values(), ids=HOSTILE_ANSWERS.keys())
@pytest.mark.parametrize("entry", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_a_long_hostile_answer_is_handled_in_well_under_a_second(
    entry: Callable[[str], object], answer: str
):
    # A generous bound: the quadratic version took 34 s on the first of these.
    assert seconds(lambda: entry(answer)) < 1.0


@pytest.mark.parametrize("call", HOSTILE_HELPER_CALLS.values(), ids=HOSTILE_HELPER_CALLS.keys())
def test_helpers_given_long_whitespace_runs_finish_in_well_under_a_second(
    call: Callable[[], object],
):
    assert seconds(call) < 1.0


@given(st.text(alphabet=" \t\n\u00a0\u2028ab1,.$%/-'\"*", max_size=40))
def test_a_cleaned_answer_has_single_spaces_only(text: str):
    """So the helpers' whitespace collapsing changes nothing for a cleaned answer."""
    cleaned = clean_answer(text)
    assert " ".join(cleaned.split()) == cleaned


def test_cleaning_time_grows_linearly():
    short, long = "." * 20_000 + "a", "." * 200_000 + "a"
    clean_answer(short)  # warm up
    # 10x the input may take 20x the time (or 0.1 s, whichever is more: timer noise);
    # quadratic, it took minutes.
    bound = 20 * max(seconds(lambda: clean_answer(short)), 5e-3)
    assert seconds(lambda: clean_answer(long)) < bound


# The regular expression the linear strip replaced: the reference for what it must do.
_OLD_TRAILING_PUNCT = re.compile(r"[\s.!?;:,]+$")


@given(st.text(alphabet=" \t\u00a0\u2028.!?;:,a1-'\"", max_size=30))
def test_the_linear_strip_removes_exactly_what_the_old_pattern_did(text: str):
    assert strip_trailing_punctuation(text) == _OLD_TRAILING_PUNCT.sub("", text)
