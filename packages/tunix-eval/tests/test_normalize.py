"""One case or more for every rule of tunix_eval.normalize: ``auto`` through
``compare_answers``, the other checks called directly."""

import pytest

from tunix_core.protocols import AnswerOptions, AnswerVerdict
from tunix_eval.normalize import (
    check_auto,
    check_casefold,
    check_exact,
    check_list,
    check_number,
    check_yes_no,
    clean_answer,
    compare_answers,
    mentioned_in,
    parse_quantity,
    split_list,
)

DEFAULTS = AnswerOptions()


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
def test_casefold_rule_of_auto(predicted, expected):
    assert verdict(predicted, expected) == (True, "casefold")


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
    assert rule in {"number", "casefold"}


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
    assert verdict("Yes.", "yes") == (True, "casefold")


YES_NO_CASES = [
    ("Yes, because 7 has no divisors", "yes", True),
    ("No, it cannot", "no", True),
    ("No! Fish cannot walk.", "no", True),
    ("no - fish cannot walk", "no", True),
    ("No — never", "no", True),
    ("True", "yes", True),
    ("correct", "true", True),
    ("false", "no", True),
    ("No", "yes", False),
    ("Maybe", "yes", False),
    ("yesterday", "yes", False),
    # The word must stand alone: a sentence that merely starts with it is not the answer.
    ("no fish can walk", "no", False),
    ("No one knows", "no", False),
    ("no-one", "no", False),
    ("yes/no", "yes", False),
    ("Yes, no", "yes", False),  # both answers at once
]


@pytest.mark.parametrize(("predicted", "expected", "correct"), YES_NO_CASES)
def test_yes_no_rule_of_auto(predicted, expected, correct):
    assert verdict(predicted, expected) == (correct, "yes_no")


@pytest.mark.parametrize(("predicted", "expected", "correct"), YES_NO_CASES)
def test_yes_no_check(predicted, expected, correct):
    assert check_yes_no(predicted, expected, DEFAULTS).correct is correct


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
def test_list_rule_of_auto(predicted, expected, correct):
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
    assert clean_answer("The Answer is: “Hello,\n  World!”", fold_case=False) == "Hello, World"


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


# The three case_change items of the default run that folding case counted as correct.
CASE_CHANGE_MISSES = [
    ("old button copper zipper", "OLD BUTTON COPPER ZIPPER"),
    ("hat wet log", "Hat Wet Log"),
    ("cup quartz ant", "CUP QUARTZ ANT"),
]


@pytest.mark.parametrize(("predicted", "expected"), CASE_CHANGE_MISSES)
def test_exact_refuses_the_wrong_case_that_auto_accepts(predicted, expected):
    assert check_auto(predicted, expected, DEFAULTS).correct
    assert not check_exact(predicted, expected, DEFAULTS).correct
    assert check_exact(expected, expected, DEFAULTS).rule == "exact"


@pytest.mark.parametrize(
    ("predicted", "expected", "correct"),
    [
        ("OLD BUTTON COPPER ZIPPER", "OLD BUTTON COPPER ZIPPER", True),
        ("  The answer is: “Hat  Wet Log”. ", "Hat Wet Log", True),  # cleanup keeps case
        ("**nretnal**", "nretnal", True),
        ("ＣＵＰ", "CUP", True),  # NFKC
        ("Nretnal", "nretnal", False),  # case
        ("apple, river, candle", "apple, candle, river", False),  # order
        ("the Eiffel Tower", "Eiffel Tower", False),  # no article dropping
        ("new-york", "new york", False),  # no hyphen leniency
        ("", "x", False),
    ],
)
def test_exact_check(predicted, expected, correct):
    assert check_exact(predicted, expected, DEFAULTS).correct is correct


def test_casefold_check_is_text_equality_only():
    assert check_casefold("The Eiffel-Tower.", "eiffel tower", DEFAULTS).correct
    assert check_casefold("STRASSE", "Straße", DEFAULTS).correct
    assert not check_casefold("1,000", "1000", DEFAULTS).correct  # no number rule
    assert not check_casefold("yes, it is", "yes", DEFAULTS).correct  # no yes/no rule


def test_number_check():
    assert check_number("$1,000.00", "1000", DEFAULTS).correct
    assert check_number("3/4", "0.75", DEFAULTS).rule == "number"
    assert not check_number("1000 apples and 3", "1000", DEFAULTS).correct
    assert check_number("100.5", "100", AnswerOptions(rel_tol=0.01)).correct
    assert not check_number("100.5", "100", DEFAULTS).correct


def test_list_check_keeps_the_order_whatever_the_options():
    assert check_list("5, 14 and 43", "5, 14, 43", DEFAULTS).correct
    assert check_list("[5; 14; 43]", "5, 14, 43", DEFAULTS).correct
    unordered = AnswerOptions(ordered_lists=False)
    assert not check_list("14, 5, 43", "5, 14, 43", unordered).correct
    assert check_auto("14, 5, 43", "5, 14, 43", unordered).correct  # auto follows the option
    assert not check_list("5, 14", "5, 14, 43", DEFAULTS).correct


@pytest.mark.parametrize(
    ("check", "expected", "message"),
    [
        (check_yes_no, "Paris", "must be yes, no, true or false"),
        (check_number, "Paris", "must be one number"),
    ],
)
def test_a_check_that_cannot_judge_the_expected_answer_says_so(check, expected, message):
    for answer in ("Paris", ""):  # even for an empty answer: the item is mislabelled
        with pytest.raises(ValueError, match=message):
            check(answer, expected, DEFAULTS)


@pytest.mark.parametrize(
    "check", [check_auto, check_exact, check_casefold, check_yes_no, check_number, check_list]
)
def test_every_check_calls_an_answer_of_punctuation_empty(check):
    expected = {check_yes_no: "no", check_number: "4", check_list: "a, b"}.get(check, "x")
    assert check(" . ", expected, DEFAULTS) == AnswerVerdict(False, "empty")
