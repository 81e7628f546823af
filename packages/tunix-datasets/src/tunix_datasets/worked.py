"""Families of worked problems: each draws a question from a seeded ``random.Random``
and solves it step by step, showing the intermediate work a model should learn to write.

A family function takes ``(rng, difficulty)`` and returns a :class:`Worked` problem whose
answer is canonical: a plain number (no units, no trailing zeros), ``yes``/``no``, a
letter, or the exact string asked for. Problems whose answer *is* a case or an order (case
changes, reversals, sorted words) name a stricter answer check than ``auto``, which folds
case (docs/evaluation.md).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import attrs


@attrs.frozen
class Worked:
    question: str
    steps: tuple[str, ...]
    answer: str
    answer_match: str = "auto"  # the record's meta.answer_match


Family = Callable[[random.Random, str], Worked]


def number(value: Fraction | int) -> str:
    """Canonical text of an exact number: ``12``, ``52.5``, ``-8``, ``0.65``."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def money(value: Fraction) -> str:
    """Dollars with cents, for prices in questions and steps: ``2.60``."""
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.2f}"


def _terminates(value: Fraction) -> bool:
    denominator = value.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    return denominator == 1


def with_digits(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1), 10**digits - 1)


NAMES = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea",
         "Mo", "Nia", "Omar", "Pia", "Raj", "Sol", "Tess", "Uma", "Vik", "Wen", "Yara", "Zed")  # fmt: skip
PLACES = ("ones", "tens", "hundreds", "thousands", "ten thousands", "hundred thousands")
WORDS = ("apple", "river", "planet", "garden", "silver", "candle", "rocket", "pencil", "window",
         "forest", "button", "marble", "tiger", "violet", "harbor", "meadow", "lantern", "puzzle",
         "copper", "falcon", "orange", "winter", "basket", "island", "helmet", "spider", "thunder",
         "pepper", "jacket", "sunset", "bridge", "cactus", "dragon", "kettle", "mirror", "nectar",
         "oyster", "pillow", "quartz", "ribbon", "saddle", "tunnel", "velvet", "walnut", "zipper",
         "anchor", "beacon", "cotton", "desert", "engine", "fabric", "glider", "hollow", "insect")  # fmt: skip
SHORT_WORDS = ("cat", "dog", "sun", "red", "big", "cup", "map", "hat", "box", "pen", "fox", "owl",
               "tea", "sky", "run", "old", "new", "hot", "wet", "fig", "jam", "log", "net", "oak",
               "pig", "rug", "tin", "van", "web", "yak", "zip", "bee", "cow", "ant", "egg", "ice")  # fmt: skip
ITEMS = (("notebooks", "notebook"), ("pens", "pen"), ("apples", "apple"),
         ("tickets", "ticket"), ("candles", "candle"), ("mugs", "mug"), ("stamps", "stamp"),
         ("batteries", "battery"), ("buttons", "button"), ("lemons", "lemon"),
         ("cookies", "cookie"), ("markers", "marker"))  # fmt: skip


# --- distance, speed and time -----------------------------------------------------------


def distance_speed_time(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "easy":
        speed, hours = rng.randrange(30, 95, 5), rng.randint(2, 6)
        distance = speed * hours
        kind = rng.choice(("distance", "time", "speed"))
        if kind == "distance":
            return Worked(
                f"A bus travels at {speed} km/h for {hours} hours. How many kilometres does it cover?",
                ("distance = speed × time", f"{speed} × {hours} = {distance}"),
                str(distance),
            )
        if kind == "time":
            return Worked(
                f"A train covers {distance} km at {speed} km/h. How many hours does the trip take?",
                ("time = distance ÷ speed", f"{distance} ÷ {speed} = {hours}"),
                str(hours),
            )
        return Worked(
            f"A car drives {distance} km in {hours} hours. What is its speed in km/h?",
            ("speed = distance ÷ time", f"{distance} ÷ {hours} = {speed}"),
            str(speed),
        )
    if difficulty == "medium":
        speed, minutes = rng.randrange(12, 121, 12), rng.choice((15, 20, 30, 40, 45, 90))
        name = rng.choice(NAMES)
        covered = Fraction(speed * minutes, 60)
        return Worked(
            f"{name} cycles at {speed} km/h for {minutes} minutes. How many kilometres is that?",
            (
                f"{minutes} minutes = {minutes} ÷ 60 hours",
                f"distance = {speed} × {minutes} ÷ 60 = {speed * minutes} ÷ 60 = {number(covered)}",
            ),
            number(covered),
        )
    while True:
        speed1, hours1 = rng.randrange(40, 100, 10), rng.randint(1, 4)
        speed2, hours2 = rng.randrange(30, 90, 5), rng.randint(1, 4)
        total_distance, total_hours = speed1 * hours1 + speed2 * hours2, hours1 + hours2
        average = Fraction(total_distance, total_hours)
        if speed1 != speed2 and _terminates(average):
            break
    d1, d2 = speed1 * hours1, speed2 * hours2
    return Worked(
        f"A van drives {d1} km at {speed1} km/h, then {d2} km at {speed2} km/h. "
        "What is its average speed for the whole trip in km/h?",
        (
            f"first part: {d1} ÷ {speed1} = {hours1} h",
            f"second part: {d2} ÷ {speed2} = {hours2} h",
            f"total: {d1} + {d2} = {total_distance} km in {hours1} + {hours2} = {total_hours} h",
            f"average speed = {total_distance} ÷ {total_hours} = {number(average)}",
        ),
        number(average),
    )


# --- percentages ------------------------------------------------------------------------


def percentage(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "easy":
        percent, base = rng.choice((5, 10, 15, 20, 25, 30, 40, 50, 75)), rng.randrange(20, 420, 20)
        part = Fraction(base * percent, 100)
        return Worked(
            f"What is {percent}% of {base}?",
            (
                f"{percent}% of {base} = {base} × {percent} ÷ 100",
                f"{base * percent} ÷ 100 = {number(part)}",
            ),
            number(part),
        )
    if difficulty == "medium":
        percent, price = rng.choice((10, 15, 20, 25, 30, 40, 50)), rng.randrange(20, 320, 20)
        item = rng.choice(("jacket", "lamp", "bike", "chair", "radio", "tent", "clock"))
        discount = Fraction(price * percent, 100)
        sale = price - discount
        return Worked(
            f"A {item} costs ${price} and is sold at {percent}% off. What is the sale price in dollars?",
            (
                f"discount = {price} × {percent} ÷ 100 = {number(discount)}",
                f"sale price = {price} - {number(discount)} = {number(sale)}",
            ),
            number(sale),
        )
    change = rng.choice((-50, -40, -25, -20, -10, 10, 20, 25, 40, 50, 60, 75, 150))
    old = rng.randrange(20, 420, 20)
    new = old * (100 + change) // 100
    direction = "increase" if change > 0 else "decrease"
    difference = abs(new - old)
    ratio = Fraction(difference, old)
    first = f"{new} - {old}" if change > 0 else f"{old} - {new}"
    return Worked(
        f"A price changes from ${old} to ${new}. By what percent did it {direction}?",
        (
            f"change = {first} = {difference}",
            f"{difference} ÷ {old} = {number(ratio)}",
            f"{number(ratio)} × 100 = {number(ratio * 100)}%",
        ),
        number(ratio * 100),
    )


# --- unit price -------------------------------------------------------------------------


def unit_price(rng: random.Random, difficulty: str) -> Worked:
    item, singular = rng.choice(ITEMS)
    if difficulty == "easy":
        count, price = rng.randint(2, 9), rng.randint(2, 15)
        total = count * price
        return Worked(
            f"{count} {item} cost ${total}. How many dollars does one cost?",
            (
                f"one {singular} = {total} ÷ {count} = {price}",
                f"check: {price} × {count} = {total}",
            ),
            str(price),
        )
    if difficulty == "medium":
        unit = Fraction(rng.randrange(35, 300, 5), 100)
        first, second = rng.sample(range(2, 13), 2)
        cost = unit * second
        return Worked(
            f"{first} {item} cost ${money(unit * first)}. At the same price, how many dollars "
            f"do {second} {item} cost?",
            (
                f"one {singular} = {money(unit * first)} ÷ {first} = {money(unit)}",
                f"{second} {item} = {second} × {money(unit)} = {money(cost)}",
            ),
            number(cost),
        )
    while True:
        count_a, count_b = rng.sample(range(3, 13), 2)
        unit_a, unit_b = (Fraction(rng.randrange(20, 200, 5), 100) for _ in range(2))
        if unit_a != unit_b:
            break
    cheaper = "A" if unit_a < unit_b else "B"
    sign = "<" if unit_a < unit_b else ">"
    return Worked(
        f"Pack A has {count_a} {item} for ${money(unit_a * count_a)}. Pack B has {count_b} for "
        f"${money(unit_b * count_b)}. Which pack is cheaper per item? Answer A or B.",
        (
            f"A: {money(unit_a * count_a)} ÷ {count_a} = {money(unit_a)} each",
            f"B: {money(unit_b * count_b)} ÷ {count_b} = {money(unit_b)} each",
            f"{money(unit_a)} {sign} {money(unit_b)}, so pack {cheaper} is cheaper",
        ),
        cheaper,
    )


# --- column arithmetic ------------------------------------------------------------------

_ARITHMETIC_DIGITS = {"easy": (2, 3), "medium": (4, 4), "hard": (5, 5)}


def addition_steps(a: int, b: int) -> list[str]:
    """Column-wise addition, ones first, with carries."""
    steps: list[str] = []
    top, bottom, carry = str(a)[::-1], str(b)[::-1], 0
    for index in range(max(len(top), len(bottom))):
        x = int(top[index]) if index < len(top) else 0
        y = int(bottom[index]) if index < len(bottom) else 0
        total = x + y + carry
        text = f"{PLACES[index]}: {x} + {y}" + (" + 1" if carry else "") + f" = {total}"
        carry = total // 10
        steps.append(text + (f", write {total % 10} carry 1" if carry else ""))
    if carry:
        steps.append("write the last carry 1")
    steps.append(f"{a} + {b} = {a + b}")
    return steps


def addition(rng: random.Random, difficulty: str) -> Worked:
    low, high = _ARITHMETIC_DIGITS[difficulty]
    a, b = with_digits(rng, rng.randint(low, high)), with_digits(rng, rng.randint(low, high))
    return Worked(f"What is {a} + {b}?", tuple(addition_steps(a, b)), str(a + b))


def subtraction_steps(a: int, b: int) -> list[str]:
    """Column-wise subtraction of ``b <= a``, ones first, with borrows."""
    steps: list[str] = []
    top, bottom, borrow = str(a)[::-1], str(b)[::-1], 0
    for index in range(len(top)):
        x = int(top[index])
        y = int(bottom[index]) if index < len(bottom) else 0
        parts = []
        if borrow:
            parts.append(f"{x} - 1 = {x - 1} after the borrow")
            x -= 1
        if x < y:
            parts.append(f"{x} < {y}, borrow: {x + 10} - {y} = {x + 10 - y}")
            borrow = 1
        else:
            parts.append(f"{x} - {y} = {x - y}")
            borrow = 0
        steps.append(f"{PLACES[index]}: " + "; ".join(parts))
    steps.append(f"{a} - {b} = {a - b}")
    return steps


def subtraction(rng: random.Random, difficulty: str) -> Worked:
    low, high = _ARITHMETIC_DIGITS[difficulty]
    a, b = sorted((with_digits(rng, high), with_digits(rng, rng.randint(low, high))), reverse=True)
    if a == b:
        b -= 1
    return Worked(f"What is {a} - {b}?", tuple(subtraction_steps(a, b)), str(a - b))


def multiplication_steps(a: int, b: int) -> list[str]:
    """Partial products: ``a`` times each non-zero place of ``b``, then their sum."""
    places = [int(d) * 10**i for i, d in enumerate(str(b)[::-1]) if d != "0"][::-1]
    if len(places) == 1:
        return [f"{a} × {b} = {a * b}"]
    products = [a * p for p in places]
    steps = [f"{a} × {b} = " + " + ".join(f"{a} × {p}" for p in places)]
    steps += [f"{a} × {p} = {q}" for p, q in zip(places, products, strict=True)]
    steps.append(" + ".join(map(str, products)) + f" = {a * b}")
    return steps


def multiplication(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "easy":
        a, b = rng.randint(2, 9), with_digits(rng, 2)  # split the two-digit factor
    elif difficulty == "medium":
        a, b = with_digits(rng, 2), with_digits(rng, 2)
    else:
        a, b = with_digits(rng, 3), with_digits(rng, rng.choice((2, 3)))
    return Worked(f"What is {a} × {b}?", tuple(multiplication_steps(a, b)), str(a * b))


# --- strings ----------------------------------------------------------------------------


def pseudo_word(rng: random.Random, length: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(length))


def string_reversal(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "hard":
        words = rng.sample(WORDS + SHORT_WORDS, rng.randint(4, 5))
        answer = " ".join(reversed(words))
        return Worked(
            f'Reverse the order of the words in "{" ".join(words)}".',
            (f"words: {' | '.join(words)}", f"last to first: {' | '.join(reversed(words))}"),
            answer,
            "exact",
        )
    word = rng.choice(WORDS) if difficulty == "easy" else pseudo_word(rng, rng.randint(6, 8))
    return Worked(
        f'Reverse the string "{word}".',
        (f"letters: {' '.join(word)}", f"from the end: {' '.join(reversed(word))}"),
        word[::-1],
        "exact",
    )


def selection_steps(values: Sequence[str], key: Callable[[str], Any], pick: str) -> list[str]:
    remaining, steps = list(values), []
    while len(remaining) > 1:
        best = min(remaining, key=key) if pick != "largest" else max(remaining, key=key)
        steps.append(f"{pick} of {', '.join(remaining)}: {best}")
        remaining.remove(best)
    steps.append(f"{remaining[0]} is left")
    return steps


def sorting(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "medium":
        words = rng.sample(WORDS, 4)
        ordered = sorted(words)
        return Worked(
            f"Sort these words alphabetically: {', '.join(words)}.",
            tuple(selection_steps(words, str, "first")),
            ", ".join(ordered),
            "exact",
        )
    count, top, order = (4, 99, "ascending") if difficulty == "easy" else (5, 999, "descending")
    numbers = [str(n) for n in rng.sample(range(1, top + 1), count)]
    pick = "smallest" if order == "ascending" else "largest"
    ordered = sorted(numbers, key=int, reverse=order == "descending")
    return Worked(
        f"Sort these numbers in {order} order: {', '.join(numbers)}.",
        tuple(selection_steps(numbers, int, pick)),
        ", ".join(ordered),
        "list",  # numbers in order; "12,34" or "12 and 34" state the same list
    )


# --- syllogisms -------------------------------------------------------------------------


def _nonsense(rng: random.Random) -> str:
    return (
        rng.choice("bdfgklmnprstvz")
        + rng.choice(("a", "e", "i", "o", "u", "oo", "ee"))
        + rng.choice(("b", "d", "g", "k", "l", "m", "n", "p", "t", "ck", "rn", "rp"))
    )


def syllogism(rng: random.Random, difficulty: str) -> Worked:
    a, b, c, d = distinct_nonsense(rng, 4)
    form = rng.choice((0, 1)) + {"easy": 0, "medium": 2, "hard": 4}[difficulty]
    ask = " Answer yes or no."
    name = rng.choice(NAMES)
    if form == 0:
        return Worked(
            f"All {a}s are {b}s. All {b}s are {c}s. Are all {a}s {c}s?{ask}",
            (f"every {a} is a {b}", f"every {b} is a {c}", f"so every {a} is a {c}"),
            "yes",
        )
    if form == 1:
        return Worked(
            f"All {a}s are {b}s. {name} is a {a}. Is {name} a {b}?{ask}",
            (f"{name} is a {a}", f"every {a} is a {b}", f"so {name} is a {b}"),
            "yes",
        )
    if form == 2:
        return Worked(
            f"All {a}s are {b}s. {name} is a {b}. Must {name} be a {a}?{ask}",
            (
                f"every {a} is a {b}, but a {b} need not be a {a}",
                f"{name} could be a {b} that is not a {a}",
                "so it does not follow",
            ),
            "no",
        )
    if form == 3:
        return Worked(
            f"No {a}s are {b}s. All {c}s are {a}s. Can a {c} be a {b}?{ask}",
            (f"every {c} is a {a}", f"no {a} is a {b}", f"so no {c} is a {b}"),
            "no",
        )
    if form == 4:
        return Worked(
            f"All {a}s are {b}s. All {b}s are {c}s. All {c}s are {d}s. Are all {a}s {d}s?{ask}",
            (
                f"every {a} is a {b}",
                f"every {b} is a {c}",
                f"every {c} is a {d}",
                f"so every {a} is a {d}",
            ),
            "yes",
        )
    return Worked(
        f"All {a}s are {c}s. All {b}s are {c}s. Are all {a}s {b}s?{ask}",
        (
            f"{a}s and {b}s are both kinds of {c}",
            f"being a {c} does not make a {a} a {b}",
            "so it does not follow",
        ),
        "no",
    )


def distinct_nonsense(rng: random.Random, count: int) -> list[str]:
    words: list[str] = []
    while len(words) < count:
        word = _nonsense(rng)
        if word not in words:
            words.append(word)
    return words


# --- counting and case ------------------------------------------------------------------


def word_count(rng: random.Random, difficulty: str) -> Worked:
    if difficulty == "easy":
        words = rng.sample(SHORT_WORDS + WORDS, rng.randint(3, 7))
        sentence = " ".join(words)
        counted = ", ".join(f"{i} {w}" for i, w in enumerate(words, start=1))
        return Worked(
            f'How many words are in "{sentence}"?',
            (f"counting: {counted}", f"there are {len(words)} words"),
            str(len(words)),
        )
    if difficulty == "medium":
        word = rng.choice(WORDS)
        letter = rng.choice(word) if rng.random() < 0.85 else rng.choice("jqxz")
        positions = [str(i) for i, ch in enumerate(word, start=1) if ch == letter]
        found = (
            f'"{letter}" is at positions {", ".join(positions)}' if positions else f'no "{letter}"'
        )
        return Worked(
            f'How many times does the letter "{letter}" appear in "{word}"?',
            (f"spell it: {'-'.join(word)}", found, f"that is {len(positions)}"),
            str(len(positions)),
        )
    words = rng.sample(WORDS, 2)
    phrase = " ".join(words)
    vowels = [ch for ch in phrase if ch in "aeiou"]
    return Worked(
        f'How many vowels (a, e, i, o, u) are in "{phrase}"?',
        (f"vowels in order: {', '.join(vowels)}", f"that is {len(vowels)}"),
        str(len(vowels)),
    )


def case_conversion(
    rng: random.Random, words: list[str], difficulty: str
) -> tuple[list[str], list[str], str]:
    """The words as asked (mixed case for hard items), their converted forms and the
    instruction, for a case-change item of ``difficulty``."""
    if difficulty == "easy":
        converted = [w.upper() for w in words]
        instruction = "Write in uppercase"
    elif difficulty == "medium":
        converted = [w.capitalize() for w in words]
        instruction = "Write in title case"
    else:
        words = ["".join(ch.upper() if rng.random() < 0.5 else ch for ch in w) for w in words]
        converted = [w.swapcase() for w in words]
        instruction = "Swap the case of every letter in"
    return words, converted, instruction


def case_change(rng: random.Random, difficulty: str) -> Worked:
    words = rng.sample(WORDS + SHORT_WORDS, rng.randint(2, 4))
    words, converted, instruction = case_conversion(rng, words, difficulty)
    return Worked(
        f'{instruction}: "{" ".join(words)}"',
        tuple(f"{w} → {c}" for w, c in zip(words, converted, strict=True)),
        " ".join(converted),
        "exact",
    )


# --- edge cases -------------------------------------------------------------------------

UNICODE_WORDS = ("café", "naïve", "mañana", "crème", "façade", "jalapeño", "über", "smörgås",
                 "Ελλάδα", "Москва", "日本語", "東京", "añejo", "fiancée", "Zürich", "København",
                 "résumé", "piñata", "Ærø", "Łódź", "κόσμος", "привет", "한국어", "🙂🍎🚀",
                 "straße", "señor", "Ålesund", "déjà", "Kraków", "Ísland")  # fmt: skip
EDGE_KINDS = ("unicode_reversal", "unicode_count", "odd_whitespace", "negative", "long_prompt")


def edge_case(rng: random.Random, kind: str) -> tuple[Worked, str]:
    """One edge case of ``kind``; returns the problem and its difficulty."""
    if kind == "unicode_reversal":
        word = rng.choice(UNICODE_WORDS)
        if rng.random() < 0.7:
            word = f"{word}{rng.randint(2, 99)}"
        return Worked(
            f'Reverse the string "{word}".',
            (f"characters: {' '.join(word)}", f"from the end: {' '.join(reversed(word))}"),
            word[::-1],
            "exact",
        ), "easy"
    if kind == "unicode_count":
        words = rng.sample(UNICODE_WORDS + SHORT_WORDS, rng.randint(3, 6))
        counted = ", ".join(f"{i} {w}" for i, w in enumerate(words, start=1))
        return Worked(
            f'How many words are in "{" ".join(words)}"?',
            (f"counting: {counted}", f"there are {len(words)} words"),
            str(len(words)),
        ), "medium"
    if kind == "odd_whitespace":
        words = rng.sample(SHORT_WORDS + WORDS, rng.randint(3, 5))
        gaps = [rng.choice(("  ", "\t", " \t ", "   ", "\n")) for _ in words[1:]]
        text = rng.choice(("", " ", "\t")) + words[0]
        for gap, word in zip(gaps, words[1:], strict=True):
            text += gap + word
        text += rng.choice(("", " ", "  "))
        return Worked(
            f'  How many words are in "{text}"?  ',
            (f"split on runs of whitespace: {' | '.join(words)}", f"there are {len(words)} words"),
            str(len(words)),
        ), "medium"
    if kind == "negative":
        a, b = sorted(rng.sample(range(2, 100), 2))
        return Worked(
            f"What is {a} - {b}?",
            (
                f"{b} is larger than {a}, so the result is negative",
                f"{b} - {a} = {b - a}",
                f"{a} - {b} = {a - b}",
            ),
            str(a - b),
        ), "easy"
    shelves = "ABCDEFGH"[: rng.randint(6, 8)]
    counts = {shelf: rng.randint(3, 40) for shelf in shelves}
    thing = rng.choice(("jars", "boxes", "books", "crates", "plants"))
    first, second = rng.sample(shelves, 2)
    log = "; ".join(f"shelf {s} has {counts[s]}" for s in shelves)
    total = counts[first] + counts[second]
    return Worked(
        f"Storeroom log of {thing}: {log}. Ignore the shelves not asked about. "
        f"How many {thing} are on shelves {first} and {second} together?",
        (
            f"shelf {first}: {counts[first]}",
            f"shelf {second}: {counts[second]}",
            f"{counts[first]} + {counts[second]} = {total}",
        ),
        str(total),
    ), "hard"
