from __future__ import annotations

import random
import re
from collections.abc import Callable
from fractions import Fraction

import pytest

from tunix_core.data.record import DIFFICULTIES
from tunix_datasets import worked

FAMILIES = [
    worked.distance_speed_time,
    worked.percentage,
    worked.unit_price,
    worked.addition,
    worked.subtraction,
    worked.multiplication,
    worked.string_reversal,
    worked.sorting,
    worked.syllogism,
    worked.word_count,
    worked.case_change,
]


@pytest.mark.parametrize(
    ("value", "text"),
    [(Fraction(12), "12"), (Fraction(105, 2), "52.5"), (Fraction(-8), "-8"), (Fraction(13, 20), "0.65"),
     (Fraction(5, 2) * 2, "5"), (0, "0")],
)  # fmt: skip
def test_numbers_are_canonical(value: Fraction, text: str) -> None:
    assert worked.number(value) == text


def test_money_keeps_cents() -> None:
    assert worked.money(Fraction(13, 5)) == "2.60"


def test_addition_shows_every_column_and_carry() -> None:
    assert worked.addition_steps(978, 46) == [
        "ones: 8 + 6 = 14, write 4 carry 1",
        "tens: 7 + 4 + 1 = 12, write 2 carry 1",
        "hundreds: 9 + 0 + 1 = 10, write 0 carry 1",
        "write the last carry 1",
        "978 + 46 = 1024",
    ]


def test_subtraction_shows_borrows() -> None:
    assert worked.subtraction_steps(503, 78) == [
        "ones: 3 < 8, borrow: 13 - 8 = 5",
        "tens: 0 - 1 = -1 after the borrow; -1 < 7, borrow: 9 - 7 = 2",
        "hundreds: 5 - 1 = 4 after the borrow; 4 - 0 = 4",
        "503 - 78 = 425",
    ]


def test_multiplication_shows_partial_products() -> None:
    assert worked.multiplication_steps(254, 308) == [
        "254 × 308 = 254 × 300 + 254 × 8",
        "254 × 300 = 76200",
        "254 × 8 = 2032",
        "76200 + 2032 = 78232",
    ]


@pytest.mark.parametrize("a", [13, 99, 4071])
@pytest.mark.parametrize("b", [7, 85, 1000])
def test_column_steps_end_with_the_true_result(a: int, b: int) -> None:
    assert worked.addition_steps(a, b)[-1] == f"{a} + {b} = {a + b}"
    assert worked.multiplication_steps(a, b)[-1].endswith(f"= {a * b}")
    big, small = max(a, b), min(a, b)
    assert worked.subtraction_steps(big, small)[-1] == f"{big} - {small} = {big - small}"


def test_column_digits_recombine_to_the_result() -> None:
    rng = random.Random(7)
    for _ in range(200):
        a, b = rng.randint(10, 99999), rng.randint(10, 99999)
        steps = worked.addition_steps(a, b)
        digits = [int(m[1]) % 10 for s in steps if (m := re.search(r"= (\d+)", s)) and ":" in s]
        final_carry = 1 if steps[-2] == "write the last carry 1" else 0
        assert int(str(final_carry) * final_carry + "".join(map(str, reversed(digits)))) == a + b


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("difficulty", DIFFICULTIES)
def test_family_answers_follow_from_questions(
    family: Callable[[random.Random, str], worked.Worked],
    difficulty: str,
    solve: Callable[[str], str | None],
) -> None:
    rng = random.Random(f"{family.__name__}-{difficulty}")
    for _ in range(40):
        problem = family(rng, difficulty)
        assert problem.steps and all(s.strip() == s and "\n" not in s for s in problem.steps)
        assert solve(problem.question) == problem.answer, problem


@pytest.mark.parametrize("kind", worked.EDGE_KINDS)
def test_edge_cases_answers_follow_from_questions(
    kind: str, solve: Callable[[str], str | None]
) -> None:
    rng = random.Random(kind)
    for _ in range(40):
        problem, difficulty = worked.edge_case(rng, kind)
        assert difficulty in DIFFICULTIES
        assert solve(problem.question) == problem.answer, problem


def test_odd_whitespace_questions_really_have_odd_whitespace() -> None:
    rng = random.Random(3)
    questions = [worked.edge_case(rng, "odd_whitespace")[0].question for _ in range(20)]
    assert all(q != q.strip() for q in questions)
    assert any("\t" in q or "\n" in q for q in questions)


def test_families_are_deterministic_for_a_seed() -> None:
    first = [worked.addition(random.Random(5), "hard") for _ in range(3)]
    again = [worked.addition(random.Random(5), "hard") for _ in range(3)]
    assert first == again
