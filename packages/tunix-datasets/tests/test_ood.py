"""The ``ood`` split of dev-reasoning-v2 and -v3: no template, question, number range or
word length of training, and the same questions in both versions."""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction

import pytest

from tunix_core.data.record import ReasoningExample
from tunix_core.protocols import TransformRegistry
from tunix_datasets import ood
from tunix_datasets.providers.dev_reasoning import DevReasoningV2
from tunix_datasets.providers.dev_reasoning_v3 import DevReasoningV3

PROVIDERS = {"v2": DevReasoningV2(), "v3": DevReasoningV3()}

# Every question form of the training families (worked.py, traced.py), written here from
# the questions, not from the generators: the test proves each train and eval question
# has exactly one, and no ood question has any.
TRAIN_TEMPLATES = {
    "arithmetic": r"What is \d+ [-+×] \d+\?",
    "travel_distance": r"A bus travels at \d+ km/h for \d+ hours\. How many kilometres does it cover\?",
    "travel_time": r"A train covers \d+ km at \d+ km/h\. How many hours does the trip take\?",
    "travel_speed": r"A car drives \d+ km in \d+ hours\. What is its speed in km/h\?",
    "cycling": r"\w+ cycles at \d+ km/h for \d+ minutes\. How many kilometres is that\?",
    "average_speed": r"A van drives \d+ km at \d+ km/h, then \d+ km at \d+ km/h\. What is its "
    r"average speed for the whole trip in km/h\?",
    "percent_of": r"What is \d+% of \d+\?",
    "percent_off": r"A \w+ costs \$\d+ and is sold at \d+% off\. What is the sale price in dollars\?",
    "percent_change": r"A price changes from \$\d+ to \$\d+\. By what percent did it (increase|decrease)\?",
    "unit_one": r"\d+ \w+ cost \$\d+\. How many dollars does one cost\?",
    "unit_more": r"\d+ \w+ cost \$[\d.]+\. At the same price, how many dollars do \d+ \w+ cost\?",
    "unit_packs": r"Pack A has \d+ \w+ for \$[\d.]+\. Pack B has \d+ for \$[\d.]+\. Which pack is "
    r"cheaper per item\? Answer A or B\.",
    "reverse_string": r'Reverse the string ".+"\.',
    "reverse_words": r'Reverse the order of the words in ".+"\.',
    "sort_words": r"Sort these words alphabetically: .+\.",
    "sort_numbers": r"Sort these numbers in (ascending|descending) order: .+\.",
    "syllogism": r"(All|No) \w+s are \w+s\. .*Answer yes or no\.",
    "count_words": r'\s*How many words are in ".+"\?\s*',
    "count_letter": r'How many times does the letter "\w" appear in "\w+"\?',
    "count_vowels": r'How many vowels \(a, e, i, o, u\) are in ".+"\?',
    "case": r'(Write in uppercase|Write in title case|Swap the case of every letter in): ".+"',
    "shelves": r"Storeroom log of \w+: .+ How many \w+ are on shelves \w and \w together\?",
}
# Families whose numbers ood draws beyond training's largest, and those whose words it
# draws longer than training's longest.
NUMBER_FAMILIES = (
    "addition",
    "subtraction",
    "multiplication",
    "sorting",
    "percentage",
    "unit_price",
)
WORD_FAMILIES = ("string_reversal", "case_change", "word_count", "sorting")


def _load(version: str, split: str) -> list[ReasoningExample]:
    return PROVIDERS[version].load(
        split, argument=None, seed=0, options={}, transforms=TransformRegistry()
    )


def _train_template(question: str) -> list[str]:
    return [
        name for name, pattern in TRAIN_TEMPLATES.items() if re.fullmatch(pattern, question, re.S)
    ]


def _key(question: str) -> str:
    return " ".join(question.split()).casefold()


def _skeleton(question: str) -> str:
    """The wording with every quoted text, number and list left out."""
    text = re.sub(r'"[^"]*"', "Q", question)
    text = re.sub(r":.*", ": L", text)
    return re.sub(r"\$?\d+(\.\d+)?", "N", " ".join(text.split()))


def _numbers(question: str) -> list[Fraction]:
    return [Fraction(n) for n in re.findall(r"\d+(?:\.\d+)?", question)]


def _payload_words(question: str) -> list[str]:
    """The words a string task works on: quoted, listed after a colon, or the last word."""
    if quoted := re.findall(r'"([^"]*)"', question):
        text = " ".join(quoted)
    elif ":" in question:
        text = question.rsplit(":", 1)[1]
    else:
        text = question.rstrip(".?").rsplit(" ", 1)[1]
    return re.findall(r"[^\W\d_]+", text)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_every_training_question_has_one_training_template(version: str) -> None:
    for example in _load(version, "train") + _load(version, "eval"):
        assert len(_train_template(example.question)) == 1, example.question


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_no_ood_question_has_a_training_template_or_wording(version: str) -> None:
    trained = _load(version, "train") + _load(version, "eval")
    evaluated = _load(version, "ood")
    for example in evaluated:
        assert _train_template(example.question) == [], example.question
    assert not {_skeleton(e.question) for e in evaluated} & {_skeleton(e.question) for e in trained}
    keys = [_key(e.question) for e in evaluated]
    assert len(set(keys)) == len(keys)
    assert not set(keys) & {_key(e.question) for e in trained}


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_each_ood_item_names_its_own_template(version: str) -> None:
    evaluated = _load(version, "ood")
    named = Counter(e.meta.extra["template"] for e in evaluated)
    assert named == {t.id: t.count for t in ood.TEMPLATES}
    assert not set(named) & set(TRAIN_TEMPLATES)
    for example in evaluated:
        template = next(t for t in ood.TEMPLATES if t.id == example.meta.extra["template"])
        assert example.meta.category == template.category
        assert example.meta.source == f"dev-reasoning-{version}"
        # every question of a template shares its wording; no two templates share one
    by_template: dict[str, set[str]] = {}
    for example in evaluated:
        by_template.setdefault(example.meta.extra["template"], set()).add(
            _skeleton(example.question)
        )
    skeletons = [s for group in by_template.values() for s in group]
    assert len(skeletons) == len(set(skeletons))


def test_ood_numbers_go_beyond_the_training_ranges() -> None:
    trained = (
        _load("v2", "train") + _load("v2", "eval") + _load("v3", "train") + _load("v3", "eval")
    )
    for family in NUMBER_FAMILIES:
        largest = max(
            max(_numbers(e.question), default=0) for e in trained if e.meta.category == family
        )
        for example in _load("v2", "ood"):
            if example.meta.category == family and _numbers(example.question):  # not words
                assert max(_numbers(example.question)) > largest, example.question
    train_percents = {
        n for e in trained if e.meta.category == "percentage"
        for n in map(int, re.findall(r"(\d+)%", e.question))
    }  # fmt: skip
    ood_percents = {
        int(n) for e in _load("v2", "ood") for n in re.findall(r"(\d+)(?:%| percent)", e.question)
        if e.meta.category == "percentage"
    }  # fmt: skip
    assert ood_percents and not ood_percents & train_percents


def test_ood_words_are_longer_than_any_training_word() -> None:
    trained = (
        _load("v2", "train") + _load("v2", "eval") + _load("v3", "train") + _load("v3", "eval")
    )
    longest = max(
        len(w) for e in trained if e.meta.category in WORD_FAMILIES
        for w in _payload_words(e.question)
    )  # fmt: skip
    assert longest <= 8
    checked = 0
    for example in _load("v2", "ood"):
        if example.meta.category in WORD_FAMILIES:
            words = _payload_words(example.question)
            if words:  # sorting numbers has none
                assert min(map(len, words)) > longest, example.question
                checked += 1
    assert checked >= 80


def test_ood_has_multi_step_word_problems_and_every_skill() -> None:
    evaluated = _load("v2", "ood")
    counts = Counter(e.meta.category for e in evaluated)
    assert len(evaluated) >= 300
    assert counts["word_problem"] >= 60
    trained_families = {e.meta.category for e in _load("v2", "train")} - {"edge_case"}
    assert trained_families < set(counts)
    assert {e.meta.section for e in evaluated if e.meta.category == "word_problem"} == {
        "multi_step"
    }


def test_both_versions_ask_the_same_ood_questions_with_their_own_steps() -> None:
    v2, v3 = _load("v2", "ood"), _load("v3", "ood")
    assert [(e.question, e.answer) for e in v2] == [(e.question, e.answer) for e in v3]
    assert sum(a.steps != b.steps for a, b in zip(v2, v3, strict=True)) >= 150


def test_answer_checks_match_the_answers() -> None:
    for example in _load("v2", "ood"):
        expected = {"string_reversal": "exact", "case_change": "exact"}.get(
            example.meta.category, "auto"
        )
        if example.meta.category == "sorting":
            expected = "exact" if re.search(r"[a-z]", example.answer) else "list"
        assert example.meta.answer_match == expected, example


def test_ood_answers_follow_from_their_questions() -> None:
    for example in _load("v2", "ood"):
        assert _solve(example.question) == example.answer, example


def _solve(q: str) -> str:
    """Each ood question worked out from its text alone."""
    nums = [Fraction(n) for n in re.findall(r"\d+(?:\.\d+)?", q)]
    quoted = re.findall(r'"([^"]*)"', q)

    def text(value: Fraction) -> str:
        return str(value.numerator) if value.denominator == 1 else str(float(value)).rstrip("0")

    if q.startswith(("Find the sum", "Find the product", "Multiply")) or "plus" in q:
        total = nums[0] + nums[1] if "sum" in q or "plus" in q else nums[0] * nums[1]
        return text(total)
    if q.startswith("Find the difference"):
        return text(nums[0] - nums[1])
    if q.startswith("Take"):
        return text(nums[1] - nums[0])
    if "backwards" in q or "reverse the letters" in q:
        return quoted[0][::-1]
    if "in reverse order" in q:
        return " ".join(reversed(quoted[0].split()))
    if q.startswith(("Arrange", "List from")):
        values = sorted(int(n) for n in q.split(":")[1].rstrip(".").split(", "))
        return ", ".join(map(str, values if q.startswith("Arrange") else values[::-1]))
    if "dictionary order" in q:
        return ", ".join(sorted(q.split(": ")[1].rstrip(".").split(", ")))
    if "to lowercase" in q:
        return quoted[0].lower()
    if "capital letters only" in q:
        return quoted[0].upper()
    if q.startswith("Count the words"):
        return str(len(q.split(": ")[1].split()))
    if m := re.fullmatch(r"Count how often the letter (\w) occurs in (\w+)\.", q):
        return str(m[2].count(m[1]))
    if "Reply yes or no." in q:
        return "yes" if "every" in q.split("follow that")[-1] else "no"
    if "plane flies" in q:
        return text(nums[0] / nums[1])
    if q.startswith("Walking"):
        return text(nums[1] / nums[0])
    if q.startswith("Find") and "percent" in q:
        return text(nums[0] * nums[1] / 100)
    if "grows by" in q:
        return text(nums[0] * (100 + nums[1]) / 100)
    if "crate" in q:
        return text(nums[1] / nums[0])
    if q.startswith("If"):
        return text(nums[1] / nums[0] * nums[2])
    if "In a sale" in q:
        return text(nums[1] / nums[0] * (100 - nums[2]) / 100)
    if "beads" in q:
        return text((nums[0] + nums[1]) * nums[2])
    if "At the same speed" in q:
        return text(nums[0] / nums[1] * nums[2])
    if "tank" in q:
        return text((nums[0] - nums[1]) / nums[0] * 100)
    if "Printing" in q:
        return text(nums[0] * len(quoted[0].split()))
    if "tax" in q:
        return text(nums[0] * nums[1] * (100 + nums[2]) / 100)
    raise AssertionError(f"no solver for {q!r}")
