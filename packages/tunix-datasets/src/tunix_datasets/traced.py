"""Worked steps a small model can follow token by token (``dev-reasoning-v3``).

Each step does one small thing and copies what it needs from the line before it or from a
list written out just above: numbers are split into digits from the right before any
column is added (so a column only takes the next digit of each list), every column shows
its carry or borrow even when it is 0, a multiplication multiplies one digit at a time,
words are spelled one letter per step with the letter's index, a sort keeps a running
smallest (or largest, or first) value through explicit comparisons, and counting numbers
every word or letter. The questions are those of :mod:`tunix_datasets.worked`; only the
steps differ, and they stay short enough that a rendered example fits 256 Gemma tokens.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from tunix_datasets import worked
from tunix_datasets.worked import SHORT_WORDS, WORDS, Worked, case_conversion

# --- digits -----------------------------------------------------------------------------


def reversed_digits(value: int, width: int) -> str:
    """``value``'s digits ones first, padded with zeros to ``width``: ``879`` -> ``9780``.
    Gemma reads every digit as its own token, so no spaces are needed between them."""
    return str(value).rjust(width, "0")[::-1]


def _from_the_left(result: int, width: int) -> str:
    """The written digits read from the left, and the number they make when a borrow left
    leading zeros."""
    padded = str(result).rjust(width, "0")
    return f"from the left: {padded}" + (f" = {result}" if padded != str(result) else "")


def addition_steps(a: int, b: int) -> list[str]:
    """Column addition from the ones: ``x+y+carry=t write t%10 carry t//10`` per column,
    then the written digits read from the left (the sum)."""
    width = max(len(str(a)), len(str(b)))
    top, bottom = reversed_digits(a, width), reversed_digits(b, width)
    steps = [f"reversed: {top} and {bottom}"]
    carry = 0
    for x, y in zip(map(int, top), map(int, bottom), strict=True):
        total = x + y + carry
        steps.append(f"{x}+{y}+{carry}={total} write {total % 10} carry {total // 10}")
        carry = total // 10
    if carry:
        steps.append(f"last carry {carry} write {carry}")
    steps.append(_from_the_left(a + b, len(str(a + b))))
    return steps


def subtraction_steps(a: int, b: int) -> list[str]:
    """Column subtraction of ``b <= a`` from the ones; a column below 0 borrows 10."""
    width = len(str(a))
    top, bottom = reversed_digits(a, width), reversed_digits(b, width)
    steps = [f"reversed: {top} and {bottom}"]
    borrow = 0
    for x, y in zip(map(int, top), map(int, bottom), strict=True):
        if x - y - borrow < 0:
            digit = 10 + x - y - borrow
            steps.append(f"{x}-{y}-{borrow}<0 so {10 + x}-{y}-{borrow}={digit} borrow 1")
            borrow = 1
        else:
            steps.append(f"{x}-{y}-{borrow}={x - y - borrow} borrow 0")
            borrow = 0
    steps.append(_from_the_left(a - b, width))
    return steps


def _times_digit_steps(a: int, digit: int) -> list[str]:
    """``a × digit`` one digit of ``a`` at a time, from the ones, with carries."""
    steps, carry = [], 0
    for x in map(int, str(a)[::-1]):
        total = x * digit + carry
        steps.append(f"{x}×{digit}+{carry}={total} write {total % 10} carry {total // 10}")
        carry = total // 10
    if carry:
        steps.append(f"last carry {carry} write {carry}")
    return steps


def multiplication_steps(a: int, b: int) -> list[str]:
    """``a`` times each non-zero digit of ``b`` (a partial product per digit, shifted by
    its place), then the sum of the partial products."""
    places = [(int(d), i) for i, d in enumerate(str(b)[::-1]) if d != "0"]
    steps: list[str] = []
    partials: list[int] = []
    for digit, place in places:
        if len(places) > 1 or place:
            steps.append(f"{a} × {digit}:")
        steps += _times_digit_steps(a, digit)
        product = a * digit
        if place:
            steps.append(
                f"{a} × {digit} = {product}, shifted {place} place{'s' * (place > 1)}: {product * 10**place}"
            )
        elif len(places) > 1:
            steps.append(f"{a} × {digit} = {product}")
        partials.append(product * 10**place)
    if len(partials) > 1:
        steps.append(" + ".join(map(str, partials)) + f" = {a * b}")
    else:
        steps.append(f"{a} × {b} = {a * b}")
    return steps


# --- letters and words ------------------------------------------------------------------


def reversal_steps(text: str) -> list[str]:
    """Spell ``text`` one numbered character per step, then read it back from the end."""
    count = len(text)
    steps = [f"{i} {ch}" for i, ch in enumerate(text, start=1)]
    steps.append(f"{count} letters; read from {count} down to 1")
    steps += [f"{i} {text[i - 1]}" for i in range(count, 0, -1)]
    steps.append(f"together: {text[::-1]}")
    return steps


def word_order_steps(words: Sequence[str]) -> list[str]:
    """Number the words, then read them back from the last."""
    count = len(words)
    steps = [f"{i} {w}" for i, w in enumerate(words, start=1)]
    steps.append(f"{count} words; read from {count} down to 1")
    steps += [f"{i} {words[i - 1]}" for i in range(count, 0, -1)]
    steps.append(f"together: {' '.join(reversed(words))}")
    return steps


def case_steps(words: Sequence[str], converted: Sequence[str]) -> list[str]:
    """One step per word: each letter mapped to its new case, then the word."""
    return [
        " ".join(f"{a}→{b}" for a, b in zip(word, new, strict=True)) + f" = {new}"
        for word, new in zip(words, converted, strict=True)
    ]


def count_words_steps(words: Sequence[str]) -> list[str]:
    """One numbered word per step; the last number is the count."""
    return [*(f"{i} {w}" for i, w in enumerate(words, start=1)), f"{len(words)} words"]


def count_letters_steps(text: str, wanted: Callable[[str], bool], what: str) -> list[str]:
    """One letter per step with a running count of the letters ``wanted`` (spaces skipped)."""
    steps, count = [], 0
    for ch in text.replace(" ", ""):
        if wanted(ch):
            count += 1
            steps.append(f"{ch} yes, {count}")
        else:
            steps.append(f"{ch} no")
    steps.append(f"{count} {what}")
    return steps


# --- sorting ----------------------------------------------------------------------------


def _first_difference(x: str, y: str) -> str:
    for a, b in zip(x, y, strict=False):
        if a != b:
            return f"{a}{'<' if a < b else '>'}{b}"
    return f"{x} is shorter" if len(x) < len(y) else f"{y} is shorter"


def sort_steps(values: Sequence[str], key: Callable[[str], Any], pick: str) -> list[str]:
    """Selection sort with a running comparison: each pass compares the kept value with the
    next one and keeps the ``pick`` (``smallest``, ``largest`` or ``first``) of the two."""
    remaining, steps = list(values), []
    largest = pick == "largest"
    while len(remaining) > 1:
        kept, comparisons = remaining[0], []
        for value in remaining[1:]:
            if isinstance(key(value), str):
                reason = _first_difference(value, kept)
            else:
                reason = f"{value}{'<' if key(value) < key(kept) else '>'}{kept}"
            if (key(value) > key(kept)) == largest:
                kept = value
            comparisons.append(f"{reason} keep {kept}")
        # the first pass goes over the question's list; later ones name what is left
        listed = "all" if len(remaining) == len(values) else ", ".join(remaining)
        steps.append(f"{pick} of {listed}: " + "; ".join(comparisons))
        remaining.remove(kept)
    steps.append(f"{remaining[0]} is left")
    return steps


# --- families ---------------------------------------------------------------------------

_DIGITS = {"easy": (2, 3), "medium": (4, 4), "hard": (5, 5)}


def addition(rng: random.Random, difficulty: str) -> Worked:
    low, high = _DIGITS[difficulty]
    a = worked.with_digits(rng, rng.randint(low, high))
    b = worked.with_digits(rng, rng.randint(low, high))
    return Worked(f"What is {a} + {b}?", tuple(addition_steps(a, b)), str(a + b))


def subtraction(rng: random.Random, difficulty: str) -> Worked:
    low, high = _DIGITS[difficulty]
    a, b = sorted(
        (worked.with_digits(rng, high), worked.with_digits(rng, rng.randint(low, high))),
        reverse=True,
    )
    if a == b:
        b -= 1
    return Worked(f"What is {a} - {b}?", tuple(subtraction_steps(a, b)), str(a - b))


def multiplication(rng: random.Random, difficulty: str) -> Worked:
    """The second factor is the one split into digits: one digit times two or three, then
    two digits times two (three times two would not fit 256 tokens)."""
    if difficulty == "easy":
        a, b = worked.with_digits(rng, 2), rng.randint(2, 9)
    elif difficulty == "medium":
        a, b = worked.with_digits(rng, 3), rng.randint(2, 9)
    else:
        a, b = worked.with_digits(rng, 2), worked.with_digits(rng, 2)
    return Worked(f"What is {a} × {b}?", tuple(multiplication_steps(a, b)), str(a * b))


def string_reversal(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "hard":
        words = rng.sample(WORDS + SHORT_WORDS, rng.randint(3, 4))
        return Worked(
            f'Reverse the order of the words in "{" ".join(words)}".',
            tuple(word_order_steps(words)),
            " ".join(reversed(words)),
            "exact",
        )
    word = rng.choice(WORDS) if difficulty == "easy" else worked.pseudo_word(rng, rng.randint(6, 8))
    return Worked(f'Reverse the string "{word}".', tuple(reversal_steps(word)), word[::-1], "exact")


def sorting(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "medium":
        words = rng.sample(WORDS, 4)
        return Worked(
            f"Sort these words alphabetically: {', '.join(words)}.",
            tuple(sort_steps(words, str, "first")),
            ", ".join(sorted(words)),
            "exact",
        )
    top, order = (99, "ascending") if difficulty == "easy" else (999, "descending")
    numbers = [str(n) for n in rng.sample(range(1, top + 1), 4)]
    pick = "smallest" if order == "ascending" else "largest"
    return Worked(
        f"Sort these numbers in {order} order: {', '.join(numbers)}.",
        tuple(sort_steps(numbers, int, pick)),
        ", ".join(sorted(numbers, key=int, reverse=order == "descending")),
        "list",
    )


def word_count(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "easy":
        words = rng.sample(SHORT_WORDS + WORDS, rng.randint(3, 7))
        return Worked(
            f'How many words are in "{" ".join(words)}"?',
            tuple(count_words_steps(words)),
            str(len(words)),
        )
    if difficulty == "medium":
        word = rng.choice(WORDS)
        letter = rng.choice(word) if rng.random() < 0.85 else rng.choice("jqxz")
        count = word.count(letter)
        return Worked(
            f'How many times does the letter "{letter}" appear in "{word}"?',
            tuple(count_letters_steps(word, lambda ch: ch == letter, f'"{letter}"')),
            str(count),
        )
    phrase = " ".join(rng.sample(WORDS, 2))
    return Worked(
        f'How many vowels (a, e, i, o, u) are in "{phrase}"?',
        tuple(count_letters_steps(phrase, lambda ch: ch in "aeiou", "vowels")),
        str(sum(ch in "aeiou" for ch in phrase)),
    )


def case_change(rng: random.Random, difficulty: str) -> Worked:
    words = rng.sample(WORDS + SHORT_WORDS, rng.randint(2, 3))
    words, converted, instruction = case_conversion(rng, words, difficulty)
    return Worked(
        f'{instruction}: "{" ".join(words)}"',
        tuple(case_steps(words, converted)),
        " ".join(converted),
        "exact",
    )
