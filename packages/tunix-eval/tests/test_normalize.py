"""One case or more for every rule of tunix_eval.normalize."""

import pytest

from tunix_eval.normalize import (
    clean_answer,
    compare_answers,
    mentioned_in,
    parse_quantity,
    split_list,
)


def verdict(predicted, expected, **options):
    match = compare_answers(predicted, expected, **options)
    return match.correct, match.rule


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        ("  Paris ", "paris"),  # whitespace and case
        ("New   York", "new york"),
        ("new-york", "New York"),  # hyphen between letters
        ("The Eiffel Tower", "Eiffel Tower"),  # leading article
        ("“Paris”", "Paris"),  # quotes
        ("**Paris**", "Paris"),  # Markdown emphasis
        ("The answer is Paris.", "Paris"),  # lead-in and trailing period
        ("Final answer: Paris", "Paris"),
        ("ＰＡＲＩＳ", "paris"),  # full-width letters (NFKC)
        ("Zürich", "zürich"),  # unicode kept, case folded
        ("Straße", "STRASSE"),  # casefold, not lower
    ],
)
def test_text_rule(predicted, expected):
    assert verdict(predicted, expected) == (True, "text")


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        ("1,234", "1234"),  # thousands separators
        ("1234", "1,234"),
        ("1,234,567.5", "1234567.5"),
        ("1 000 000", "1000000"),  # spaces as separators
        ("$12.50", "12.5"),  # currency sign
        ("12.50 dollars", "$12.5"),  # currency word vs sign
        ("€5", "5 euros"),
        ("-$5", "-5"),
        ("−3", "-3"),  # unicode minus
        ("42 apples", "42"),  # unit only on one side
        ("12 km/h", "12"),
        ("4 hours", "4 hour"),  # plural unit
        ("25%", "25"),  # percent as its number
        ("25%", "0.25"),  # ... or as a fraction of one
        ("0.25", "25%"),
        ("50 percent", "50%"),
        ("3/4", "0.75"),  # fractions against decimals
        ("0.75", "3/4"),
        ("1 1/2", "1.5"),  # mixed number
        ("\\frac{1}{2}", "0.5"),  # LaTeX fraction
        ("\\boxed{42}", "42.0"),  # LaTeX box
        ("$\\frac{3}{4}$", "0.75"),
        ("0.33", "1/3"),  # a rounded decimal of 2+ places
        ("0.667", "2/3"),
        ("2e3", "2000"),
        ("x = 7", "7"),  # assignment
        ("five", "5"),  # number word
        ("0.1", "0.10000000001"),  # relative tolerance
        ("١٢", "12"),  # Arabic-Indic digits are digits
    ],
)
def test_number_rule_matches(predicted, expected):
    correct, rule = verdict(predicted, expected)
    assert correct, (predicted, expected, rule)
    assert rule in {"number", "text"}


@pytest.mark.parametrize(
    ("predicted", "expected"),
    [
        ("12", "13"),
        ("0.3", "1/3"),  # one decimal place is not enough for the rounding rule
        ("0.34", "1/3"),
        ("5 m", "500 cm"),  # different units never match (no conversion)
        ("3 apples", "3 oranges"),
        ("-5", "5"),
        ("1,2", "12"),  # not a thousands separator: a list
        ("twelve apples and more", "12"),
        ("25", "0.26"),
        ("1/0", "1"),
    ],
)
def test_number_rule_mismatches(predicted, expected):
    assert verdict(predicted, expected) == (False, "number")


def test_identical_yes_no_answers_match_as_text():
    assert verdict("Yes.", "yes") == (True, "text")


@pytest.mark.parametrize(
    ("predicted", "expected", "correct"),
    [
        ("Yes, because 7 has no divisors", "yes", True),
        ("True", "yes", True),
        ("correct", "true", True),
        ("No", "yes", False),
        ("false", "no", True),
        ("Maybe", "yes", False),
        ("yesterday", "yes", False),
    ],
)
def test_yes_no_rule(predicted, expected, correct):
    assert verdict(predicted, expected) == (correct, "yes/no")


@pytest.mark.parametrize(
    ("predicted", "expected", "correct"),
    [
        ("3, 2, 1", "[3,2,1]", True),
        ("2, 3 and 5", "2, 3, 5", True),
        ("2; 3; 5", "2, 3, 5", True),
        ("(2, 3, 5)", "2,3,5", True),
        ("2, 3", "2, 3, 5", False),  # missing item
        ("5, 3, 2", "2, 3, 5", False),  # order matters by default
        ("apples, pears", "Apples and Pears", True),
        ("$1 and 2 dollars", "1, 2", True),  # items compared by the number rule
    ],
)
def test_list_rule(predicted, expected, correct):
    assert verdict(predicted, expected) == (correct, "list")


def test_unordered_lists_on_request():
    assert verdict("5, 3, 2", "2, 3, 5", ordered_lists=False) == (True, "list")
    assert verdict("5, 3, 3", "2, 3, 5", ordered_lists=False) == (False, "list")


def test_missing_and_empty_answers():
    assert verdict(None, "4") == (False, "missing")
    assert verdict("", "4") == (False, "empty")
    assert verdict("  . ", "4") == (False, "empty")


def test_clean_answer():
    assert clean_answer("  The final answer is: **$\\boxed{\\text{42}}$**. ") == "42"
    assert clean_answer("A = 3") == "3"
    assert clean_answer("**2 * 3**") == "2 * 3"  # emphasis goes, a multiplication stays
    assert clean_answer("*Paris*") == "paris"
    assert clean_answer("Hello,\n  World!") == "hello, world"


def test_parse_quantity_details():
    quantity = parse_quantity("$1,234.50")
    assert quantity is not None
    assert (float(quantity.value), quantity.unit, quantity.decimals) == (1234.5, "usd", 2)
    assert parse_quantity("12%").percent
    assert parse_quantity("3/4").is_fraction
    assert parse_quantity("paris") is None
    assert parse_quantity("$") is None
    assert parse_quantity("5 km and 3") is None
    assert parse_quantity("-+5") is None


def test_split_list_keeps_a_thousands_number_whole():
    assert split_list("1,234") == ["1,234"]
    assert split_list("[a, b]") == ["a", "b"]
    assert split_list("x") == ["x"]


def test_mentioned_in():
    assert mentioned_in("42", "40 plus 2 is 42 apples.")
    assert mentioned_in("1,234", "The total is 1234.")
    assert mentioned_in("0.5", "Half, that is 1/2.")
    assert not mentioned_in("7", "There are 17 of them.")
    assert mentioned_in("Paris", "The capital of France is Paris.")
    assert not mentioned_in("Paris", "The capital is Lyon.")
    assert mentioned_in("2, 3", "Primes: 2 and 3.")
    assert not mentioned_in("2, 5", "Primes: 2 and 3.")
    assert not mentioned_in("4", "")
