"""The built-in answer checks and the normalisation behind them.

An item picks its check by name in ``meta.answer_match``
(:func:`tunix_core.evaluation.check_answer` does the picking; tunix-eval's plugin registers
the checks). Both sides are cleaned the same way first (:func:`clean_answer`, which keeps
the case for ``exact`` and folds it for the others); then:

- ``exact``: the cleaned texts are equal, case and order significant;
- ``casefold``: the cleaned texts are equal after case folding, ignoring a leading
  article, quotes, and hyphens between letters;
- ``yes_no``: the expected answer is yes/no/true/false and the prediction is a word of the
  same polarity, alone or followed by punctuation ("No, it cannot"; not "no fish can walk");
- ``number``: the expected answer is a number (with optional sign, currency sign, unit,
  percent sign, thousands separators, fraction or mixed number); the prediction must be
  one too, with an equal value (exactly, or within ``rel_tol``; a percentage also
  matches its value / 100; a decimal of 2+ places matches a fraction it rounds;
  different units on both sides never match);
- ``list``: the items (separated by commas, semicolons, "&" or "and") match one by one
  in order, each by ``casefold``, ``yes_no`` or ``number`` as for ``auto``;
- ``auto`` (the default): ``casefold``, and when that fails the first of ``yes_no``,
  ``number`` and ``list`` that fits the expected answer (a list in any order with
  ``ordered_lists=False``).

docs/evaluation.md lists every rule with an example it accepts and one it refuses.
"""

from __future__ import annotations

import math
import re
import unicodedata
from fractions import Fraction

import attrs

from tunix_core.protocols import AnswerOptions, AnswerVerdict

YES_WORDS = frozenset({"yes", "y", "true", "correct"})
NO_WORDS = frozenset({"no", "n", "false", "incorrect"})
# Expected answers that switch on the yes/no rule (a stricter set than what a model may say).
BOOLEAN_ANSWERS = {"yes": True, "true": True, "no": False, "false": False}
NUMBER_WORDS = {
    word: index
    for index, word in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
CURRENCY_SIGNS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr"}
UNIT_ALIASES = {
    "dollar": "usd", "usd": "usd", "buck": "usd", "euro": "eur", "eur": "eur",
    "gbp": "gbp", "yen": "jpy", "jpy": "jpy", "rupee": "inr", "inr": "inr",
    "cent": "cent", "¢": "cent",
}  # fmt: skip

_LATEX_UNWRAP = re.compile(r"\\(?:boxed|text|textbf|mathrm|mathbf|operatorname)\s*\{([^{}]*)\}")
_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_LATEX_DROP = re.compile(r"\\(?:left|right|displaystyle|[,!;: ])")
_INLINE_MATH = re.compile(r"\$\$?([^$]+?)\$\$?")
_LEADING_PHRASE = re.compile(
    r"^(?:so\s+|thus\s+|therefore\s+)?(?:the\s+)?(?:final\s+)?answer\s*(?:is\s*:?|:|=)\s*",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(r"^[a-z]\s*=\s*(?=\S)", re.IGNORECASE)
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_QUOTES = "\"'“”‘’`"
# Matched at the start of the reversed text: ``[...]+$`` searched forwards retries from
# every position of a long run of dots that does not reach the end (quadratic).
_LEADING_PUNCT = re.compile(r"[\s.!?;:,]+")

_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d{1,3}(?:[ ]\d{3})+|\d+)"
_UNIT_WORD = r"(?:[^\W\d_]|[°µ¢])+(?:\^?\d)?"
_QUANTITY = re.compile(
    rf"""^
    (?P<sign1>[-+])?\s*(?P<currency>[$€£¥₹])?\s*(?P<sign2>[-+])?\s*
    (?:
        (?P<whole>\d+)\s+(?P<mixed_num>\d+)\s*/\s*(?P<mixed_den>\d+)
      | (?P<num>\d+)\s*/\s*(?P<den>\d+)
      | (?P<int>{_DIGITS})?(?:\.(?P<frac>\d+))?(?:e(?P<exp>[-+]?\d+))?
    )
    \s*(?P<percent>%|percent\b|per\s*cent\b)?
    \s*(?P<unit>[$€£¥₹¢]|{_UNIT_WORD}(?:\s*[/·*\- ]\s*{_UNIT_WORD}){{0,2}})?
    $""",
    re.VERBOSE,
)
_NUMBER_IN_TEXT = re.compile(
    r"(?<![\w.])[-+]?(?:\d+\s*/\s*\d+|(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
)
_LIST_SEPARATOR = re.compile(r"\s*(?:[,;]|&|\band\b)\s*")
_BRACKETS = {"[": "]", "(": ")", "{": "}"}


@attrs.frozen
class Quantity:
    """A number read from an answer. ``decimals``: digits after the point when it was
    written as a decimal (used by the rounding rule); ``is_fraction``: written as p/q."""

    value: Fraction
    unit: str = ""
    percent: bool = False
    decimals: int | None = None
    is_fraction: bool = False


EMPTY = AnswerVerdict(False, "empty")


def clean_answer(text: str, *, fold_case: bool = True) -> str:
    """Unicode-normalised (NFKC), case-folded text without LaTeX wrappers, Markdown
    emphasis, quotes, an "answer is" lead-in, a ``x =`` assignment or trailing punctuation.
    ``fold_case=False`` does all of that but keeps the case (the ``exact`` check)."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-").replace("\u2013", "-")
    text = text.replace("\\%", "%").replace("\\$", "$")
    for _ in range(3):  # nested wrappers such as \boxed{\text{...}}
        text = _LATEX_FRAC.sub(r"\1/\2", _LATEX_UNWRAP.sub(r"\1", text))
    text = _INLINE_MATH.sub(r"\1", _LATEX_DROP.sub("", text))
    text = _BOLD.sub(r"\1", text).strip("* ")  # "2 * 3" keeps its star
    if fold_case:
        text = text.casefold()
    text = " ".join(text.split())
    text = _LEADING_PHRASE.sub("", text)
    text = _ASSIGNMENT.sub("", text)
    text = text.strip(_QUOTES + " ")
    return strip_trailing_punctuation(text).strip(_QUOTES + " ")


def strip_trailing_punctuation(text: str) -> str:
    """``text`` without the whitespace and ``.!?;:,`` it ends with, in linear time."""
    run = _LEADING_PUNCT.match(text[::-1])
    return text[: len(text) - run.end()] if run else text


def _text_key(cleaned: str) -> str:
    """Text as compared by the ``text`` rule: no leading article, no quotes, hyphens
    between letters read as spaces."""
    text = re.sub(r"^(?:the|a|an)\s+", "", cleaned)
    text = re.sub(r"(?<=[^\W\d_])-(?=[^\W\d_])", " ", text)
    return " ".join(text.translate({ord(q): None for q in _QUOTES}).split())


def _canonical_unit(unit: str) -> str:
    unit = " ".join(unit.split())
    if unit in CURRENCY_SIGNS:
        return CURRENCY_SIGNS[unit]
    if len(unit) > 3 and unit.endswith("s") and unit[-2] != "s":
        unit = unit[:-1]  # plural: hours -> hour, dollars -> dollar
    return UNIT_ALIASES.get(unit, unit)


def parse_quantity(cleaned: str) -> Quantity | None:
    """The number a whole cleaned answer states, or ``None`` when it is not one number.
    A run of whitespace counts as one space (a cleaned answer has no other), which keeps
    the pattern's adjacent ``\\s*`` from backtracking over a long run."""
    text = " ".join(cleaned.split())
    if text in NUMBER_WORDS:
        text = str(NUMBER_WORDS[text])
    match = _QUANTITY.match(text)
    if match is None:
        return None
    groups = match.groupdict()
    if groups["sign1"] and groups["sign2"]:
        return None
    negative = "-" in (groups["sign1"] or "", groups["sign2"] or "")
    decimals: int | None = None
    is_fraction = False
    if groups["whole"] is not None:
        if int(groups["mixed_den"]) == 0:
            return None
        value = int(groups["whole"]) + Fraction(int(groups["mixed_num"]), int(groups["mixed_den"]))
        is_fraction = True
    elif groups["num"] is not None:
        if int(groups["den"]) == 0:
            return None
        value = Fraction(int(groups["num"]), int(groups["den"]))
        is_fraction = True
    elif groups["int"] is not None or groups["frac"] is not None:
        digits = (groups["int"] or "0").replace(",", "").replace(" ", "")
        value = Fraction(f"{digits}.{groups['frac'] or '0'}")
        decimals = len(groups["frac"]) if groups["frac"] else 0
        if groups["exp"] is not None:
            value *= Fraction(10) ** int(groups["exp"])
            decimals = None
    else:
        return None
    units = {_canonical_unit(u) for u in (groups["currency"], groups["unit"]) if u}
    if len(units) > 1:
        return None
    return Quantity(
        value=-value if negative else value,
        unit=units.pop() if units else "",
        percent=groups["percent"] is not None,
        decimals=decimals,
        is_fraction=is_fraction,
    )


def _close(a: Fraction, b: Fraction, rel_tol: float) -> bool:
    return a == b or math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-12)


def _rounds_to(fraction: Quantity, decimal: Quantity) -> bool:
    """A decimal of 2+ places that is the fraction rounded (``0.33`` for ``1/3``)."""
    if not fraction.is_fraction or decimal.decimals is None or decimal.decimals < 2:
        return False
    return math.isclose(round(float(fraction.value), decimal.decimals), float(decimal.value))


def quantities_equal(predicted: Quantity, expected: Quantity, *, rel_tol: float = 1e-6) -> bool:
    """The ``number`` rule (see the module docstring)."""
    if predicted.unit and expected.unit and predicted.unit != expected.unit:
        return False

    def readings(q: Quantity, other: Quantity) -> list[Fraction]:
        # "25%" is 25 or 0.25 when the other side carries no percent sign.
        return [q.value, q.value / 100] if q.percent and not other.percent else [q.value]

    for p in readings(predicted, expected):
        for e in readings(expected, predicted):
            if _close(p, e, rel_tol):
                return True
    return _rounds_to(expected, predicted) or _rounds_to(predicted, expected)


# A yes/no word that is the whole answer or is followed by punctuation: "no", "No, it
# cannot", "no - it cannot", "no—never"; not "no fish can walk", "no-one" or "yes/no".
_STATED_BOOLEAN = re.compile(r"([^\W\d_]+)(?:\s*(?:[,.;:!?–—]|-(?=\s|$))\s*(.*))?")
_FIRST_WORD = re.compile(r"[^\W\d_]+")


def _polarity(word: str) -> bool | None:
    if word in YES_WORDS:
        return True
    if word in NO_WORDS:
        return False
    return None


def stated_boolean(cleaned: str) -> bool | None:
    """``True``/``False`` when the cleaned answer is a yes/no word alone or followed by
    punctuation; ``None`` otherwise, and when the text after it starts with the opposite
    word ("yes, no")."""
    match = _STATED_BOOLEAN.fullmatch(cleaned)
    if match is None:
        return None
    value = _polarity(match.group(1))
    rest = _FIRST_WORD.match(match.group(2) or "")
    if value is None or (rest is not None and BOOLEAN_ANSWERS.get(rest.group()) is (not value)):
        return None
    return value


def split_list(cleaned: str) -> list[str]:
    """The items of a list answer (brackets dropped); one item when it is not a list.
    A number with thousands separators (``1,234``) is one item. A run of whitespace counts
    as one space, as in :func:`parse_quantity` (a separator's ``\\s*`` would otherwise
    rescan a long run from each of its spaces)."""
    text = " ".join(cleaned.split())
    if text[:1] in _BRACKETS and text.endswith(_BRACKETS[text[0]]):
        text = text[1:-1].strip()
    if parse_quantity(text) is not None:
        return [text]
    return [item for item in _LIST_SEPARATOR.split(text) if item]


def _number(predicted: str, expected: Quantity, rel_tol: float) -> AnswerVerdict:
    quantity = parse_quantity(predicted)
    ok = quantity is not None and quantities_equal(quantity, expected, rel_tol=rel_tol)
    return AnswerVerdict(ok, "number")


def _auto(predicted: str, expected: str, rel_tol: float, ordered_lists: bool,
          allow_lists: bool = True) -> AnswerVerdict:  # fmt: skip
    """The ``auto`` rule on cleaned texts (see the module docstring)."""
    if _text_key(predicted) == _text_key(expected):
        return AnswerVerdict(True, "casefold")
    if expected in BOOLEAN_ANSWERS:
        return AnswerVerdict(stated_boolean(predicted) is BOOLEAN_ANSWERS[expected], "yes_no")
    expected_number = parse_quantity(expected)
    if expected_number is not None:
        return _number(predicted, expected_number, rel_tol)
    expected_items = split_list(expected) if allow_lists else []
    if len(expected_items) >= 2:
        ok = _lists_equal(split_list(predicted), expected_items, rel_tol, ordered_lists)
        return AnswerVerdict(ok, "list")
    return AnswerVerdict(False, "casefold")


def _lists_equal(predicted: list[str], expected: list[str], rel_tol: float, ordered: bool) -> bool:
    if len(predicted) != len(expected):
        return False

    def same(p: str, e: str) -> bool:
        return _auto(p, e, rel_tol, ordered, allow_lists=False).correct

    if all(same(p, e) for p, e in zip(predicted, expected, strict=True)):
        return True
    if ordered:
        return False
    unmatched = list(predicted)
    for e in expected:
        hit = next((i for i, p in enumerate(unmatched) if same(p, e)), None)
        if hit is None:
            return False
        unmatched.pop(hit)
    return True


# The checks registered by tunix-eval's plugin. Each cleans the answer and returns
# ``empty`` when nothing is left; a check that cannot judge the expected answer (``number``
# for "Paris") raises ValueError whatever the answer, so a mislabelled item is never
# silently scored.


def check_exact(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    """``exact``: equal cleaned texts, case and order significant."""
    predicted = clean_answer(answer, fold_case=False)
    if not predicted:
        return EMPTY
    return AnswerVerdict(predicted == clean_answer(expected, fold_case=False), "exact")


def check_casefold(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    """``casefold``: equal cleaned texts after case folding (leading article, quotes and
    hyphens between letters ignored)."""
    predicted = clean_answer(answer)
    if not predicted:
        return EMPTY
    return AnswerVerdict(_text_key(predicted) == _text_key(clean_answer(expected)), "casefold")


def check_yes_no(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    """``yes_no``: a yes/no word of the expected polarity, alone or before punctuation."""
    wanted = BOOLEAN_ANSWERS.get(clean_answer(expected))
    if wanted is None:
        raise ValueError(f"the expected answer must be yes, no, true or false, got {expected!r}")
    predicted = clean_answer(answer)
    if not predicted:
        return EMPTY
    return AnswerVerdict(stated_boolean(predicted) is wanted, "yes_no")


def check_number(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    """``number``: one number of equal value (``options.rel_tol``)."""
    wanted = parse_quantity(clean_answer(expected))
    if wanted is None:
        raise ValueError(f"the expected answer must be one number, got {expected!r}")
    predicted = clean_answer(answer)
    if not predicted:
        return EMPTY
    return _number(predicted, wanted, options.rel_tol)


def check_list(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    """``list``: as many items, matching one by one in order (whatever
    ``options.ordered_lists`` says: an item that names this check says order matters)."""
    predicted = clean_answer(answer)
    if not predicted:
        return EMPTY
    wanted = split_list(clean_answer(expected))
    ok = _lists_equal(split_list(predicted), wanted, options.rel_tol, ordered=True)
    return AnswerVerdict(ok, "list")


def check_auto(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    """``auto``: the default (see the module docstring)."""
    predicted = clean_answer(answer)
    if not predicted:
        return EMPTY
    return _auto(predicted, clean_answer(expected), options.rel_tol, options.ordered_lists)


def compare_answers(
    predicted: str | None, expected: str, *, rel_tol: float = 1e-6, ordered_lists: bool = True
) -> AnswerVerdict:
    """The ``auto`` check on an answer that may be missing (``None``: no answer block)."""
    if predicted is None:
        return AnswerVerdict(False, "missing")
    return check_auto(predicted, expected, AnswerOptions(rel_tol, ordered_lists))


def mentioned_in(answer: str, text: str, *, rel_tol: float = 1e-6) -> bool:
    """Whether ``text`` (a reasoning block) states ``answer``'s value: a number equal to
    it anywhere, or for other answers every list item's cleaned text as a substring."""
    cleaned_text = clean_answer(text)
    items = split_list(clean_answer(answer))
    if not items or not cleaned_text:
        return False
    for item in items:
        quantity = parse_quantity(item)
        if quantity is not None:
            numbers = (parse_quantity(m.group()) for m in _NUMBER_IN_TEXT.finditer(cleaned_text))
            if not any(n is not None and _close(n.value, quantity.value, rel_tol) for n in numbers):
                return False
        elif _text_key(item) not in _text_key(cleaned_text):
            return False
    return True
