"""The ``ood`` split of dev-reasoning-v2 and -v3: the same skills asked in ways training
never shows.

Every template here is its own function, separate from the training families of
:mod:`tunix_datasets.worked`: other wording, and numbers, word lengths and list sizes
outside the training ranges (six-digit sums, four-digit factors and list items, words of 9
to 12 letters, 8 to 10 words to count, percents such as 35 % and miles per hour), plus
word problems that chain two skills (a unit price, then a discount on it). Each item names
its template in ``meta.extra.template``. The questions come from seeds of their own, so
both dataset versions ask the same ood questions; only the shown work follows the
version's style (:class:`Traces`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

import attrs

from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.data.splits import derived_seed
from tunix_datasets import traced, worked
from tunix_datasets.worked import Worked, number

# Bump to redraw every ood question (both dataset versions pin the result).
OOD_SEED_VERSION = "1.0.0"
OOD_SECTION = "multi_step"  # the section of the word problems that chain two skills

LONG_WORDS = ("butterfly", "chocolate", "adventure", "blueberry", "crocodile", "dandelion",
              "fireworks", "grapefruit", "hurricane", "invisible", "jellyfish", "lighthouse",
              "marshmallow", "nightingale", "pineapple", "quicksand", "raspberry", "snowflake",
              "strawberry", "telescope", "volleyball", "watermelon", "xylophone", "yesterday",
              "waterfall", "submarine", "astronaut", "carpenter", "dictionary", "encyclopedia",
              "friendship", "gingerbread", "hummingbird", "kaleidoscope", "labyrinth",
              "mathematics", "neighborhood", "orchestra", "playground", "rhinoceros", "scarecrow",
              "thermometer", "underground", "wilderness", "basketball", "chameleon", "peppermint",
              "toothbrush", "sunflower", "typewriter")  # fmt: skip
OOD_NAMES = ("Ada", "Bruno", "Chloe", "Dario", "Esme", "Felix", "Greta", "Hugo", "Ines", "Jonas",
             "Kira", "Luca", "Maya", "Nico", "Olga", "Pavel")  # fmt: skip
OOD_ITEMS = (("scarves", "scarf"), ("kites", "kite"), ("towels", "towel"), ("blankets", "blanket"),
             ("teapots", "teapot"), ("wallets", "wallet"), ("posters", "poster"),
             ("backpacks", "backpack"))  # fmt: skip
OOD_PERCENTS = (8, 12, 35, 45, 60, 65, 80, 90)


@attrs.frozen
class Traces:
    """How a dataset version shows the work of the skills an ood question uses."""

    addition: Callable[[int, int], list[str]]
    subtraction: Callable[[int, int], list[str]]  # of b <= a
    multiplication: Callable[[int, int], list[str]]
    reversal: Callable[[str], list[str]]
    word_order: Callable[[Sequence[str]], list[str]]
    case: Callable[[Sequence[str], Sequence[str]], list[str]]  # words, converted
    sort: Callable[[Sequence[str], Callable[[str], Any], str], list[str]]  # pick as in worked
    count_words: Callable[[Sequence[str]], list[str]]
    count_letter: Callable[[str, str], list[str]]  # word, letter


def _v2_count_letter(word: str, letter: str) -> list[str]:
    positions = [str(i) for i, ch in enumerate(word, start=1) if ch == letter]
    return [
        f"spell it: {'-'.join(word)}",
        f'"{letter}" is at positions {", ".join(positions)}',
        f"that is {len(positions)}",
    ]


V2_TRACES = Traces(
    addition=worked.addition_steps,
    subtraction=worked.subtraction_steps,
    multiplication=worked.multiplication_steps,
    reversal=lambda word: [
        f"letters: {' '.join(word)}",
        f"from the end: {' '.join(reversed(word))}",
    ],
    word_order=lambda words: [
        f"words: {' | '.join(words)}",
        f"last to first: {' | '.join(reversed(words))}",
    ],
    case=lambda words, new: [f"{w} → {c}" for w, c in zip(words, new, strict=True)],
    sort=worked.selection_steps,
    count_words=lambda words: [
        "counting: " + ", ".join(f"{i} {w}" for i, w in enumerate(words, start=1)),
        f"there are {len(words)} words",
    ],
    count_letter=_v2_count_letter,
)
V3_TRACES = Traces(
    addition=traced.addition_steps,
    subtraction=traced.subtraction_steps,
    multiplication=traced.multiplication_steps,
    reversal=traced.reversal_steps,
    word_order=traced.word_order_steps,
    case=traced.case_steps,
    sort=traced.sort_steps,
    count_words=traced.count_words_steps,
    count_letter=lambda word, letter: traced.count_letters_steps(
        word, lambda ch: ch == letter, f'"{letter}"'
    ),
)

Template = Callable[[random.Random, Traces], Worked]


def _long_pseudo_word(rng: random.Random) -> str:
    return worked.pseudo_word(rng, rng.randint(9, 10))


def _long_nonsense(rng: random.Random, count: int) -> list[str]:
    """Made-up 7-letter nouns (training's are 3 to 5 letters)."""
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))
        word += rng.choice("lmnrst")
        if word not in words:
            words.append(word)
    return words


# --- single skills ----------------------------------------------------------------------


def add_sum_of(rng: random.Random, traces: Traces) -> Worked:
    a, b = worked.with_digits(rng, 6), worked.with_digits(rng, 4)
    return Worked(f"Find the sum of {a} and {b}.", tuple(traces.addition(a, b)), str(a + b))


def add_plus(rng: random.Random, traces: Traces) -> Worked:
    a, b = worked.with_digits(rng, 6), rng.randint(2, 9)
    return Worked(f"{a} plus {b} equals what?", tuple(traces.addition(a, b)), str(a + b))


def sub_difference(rng: random.Random, traces: Traces) -> Worked:
    a, b = worked.with_digits(rng, 6), worked.with_digits(rng, 4)
    return Worked(
        f"Find the difference between {a} and {b}.", tuple(traces.subtraction(a, b)), str(a - b)
    )


def sub_take_away(rng: random.Random, traces: Traces) -> Worked:
    a, b = worked.with_digits(rng, 6), rng.randint(2, 9)
    return Worked(
        f"Take {b} away from {a}. What remains?", tuple(traces.subtraction(a, b)), str(a - b)
    )


def mul_product(rng: random.Random, traces: Traces) -> Worked:
    a, b = worked.with_digits(rng, 4), rng.randint(2, 9)
    return Worked(
        f"Find the product of {a} and {b}.", tuple(traces.multiplication(a, b)), str(a * b)
    )


def mul_multiply(rng: random.Random, traces: Traces) -> Worked:
    a, b = worked.with_digits(rng, 4), rng.randint(2, 9)
    return Worked(f"Multiply {a} by {b}.", tuple(traces.multiplication(a, b)), str(a * b))


def rev_backwards(rng: random.Random, traces: Traces) -> Worked:
    word = rng.choice(LONG_WORDS)
    return Worked(f'Write "{word}" backwards.', tuple(traces.reversal(word)), word[::-1], "exact")


def rev_letters(rng: random.Random, traces: Traces) -> Worked:
    word = _long_pseudo_word(rng)
    return Worked(
        f'What do you get when you reverse the letters of "{word}"?',
        tuple(traces.reversal(word)),
        word[::-1],
        "exact",
    )


def rev_words(rng: random.Random, traces: Traces) -> Worked:
    words = rng.sample(LONG_WORDS, rng.randint(6, 7))
    return Worked(
        f'Put the words of "{" ".join(words)}" in reverse order.',
        tuple(traces.word_order(words)),
        " ".join(reversed(words)),
        "exact",
    )


def _sorted_numbers(rng: random.Random, traces: Traces, question: str, largest: bool) -> Worked:
    numbers = [str(n) for n in rng.sample(range(1000, 10_000), 3)]
    return Worked(
        question.format(", ".join(numbers)),
        tuple(traces.sort(numbers, int, "largest" if largest else "smallest")),
        ", ".join(sorted(numbers, key=int, reverse=largest)),
        "list",
    )


def sort_ascending(rng: random.Random, traces: Traces) -> Worked:
    return _sorted_numbers(rng, traces, "Arrange from smallest to largest: {}.", largest=False)


def sort_descending(rng: random.Random, traces: Traces) -> Worked:
    return _sorted_numbers(rng, traces, "List from largest to smallest: {}.", largest=True)


def sort_words(rng: random.Random, traces: Traces) -> Worked:
    words = rng.sample(LONG_WORDS, 4)
    return Worked(
        f"Put these words in dictionary order: {', '.join(words)}.",
        tuple(traces.sort(words, str, "first")),
        ", ".join(sorted(words)),
        "exact",
    )


def case_lower(rng: random.Random, traces: Traces) -> Worked:
    words = [w.upper() for w in rng.sample(LONG_WORDS, 2)]
    lower = [w.lower() for w in words]
    return Worked(
        f'Convert "{" ".join(words)}" to lowercase.',
        tuple(traces.case(words, lower)),
        " ".join(lower),
        "exact",
    )


def case_capitals(rng: random.Random, traces: Traces) -> Worked:
    words = rng.sample(LONG_WORDS, 2)
    upper = [w.upper() for w in words]
    return Worked(
        f'Rewrite "{" ".join(words)}" using capital letters only.',
        tuple(traces.case(words, upper)),
        " ".join(upper),
        "exact",
    )


def count_words(rng: random.Random, traces: Traces) -> Worked:
    words = rng.sample(LONG_WORDS, rng.randint(8, 10))
    return Worked(
        f"Count the words in this line: {' '.join(words)}",
        tuple(traces.count_words(words)),
        str(len(words)),
    )


def count_letter(rng: random.Random, traces: Traces) -> Worked:
    word = rng.choice(LONG_WORDS)
    letter = rng.choice(word)
    return Worked(
        f"Count how often the letter {letter} occurs in {word}.",
        tuple(traces.count_letter(word, letter)),
        str(word.count(letter)),
    )


_REPLY = " Reply yes or no."


def syllogism_chain(rng: random.Random, traces: Traces) -> Worked:
    a, b, c = _long_nonsense(rng, 3)
    return Worked(
        f"Every {a} is a {b}, and every {b} is a {c}. Does it follow that every {a} is a {c}?"
        + _REPLY,
        (f"every {a} is a {b}", f"every {b} is a {c}", f"so every {a} is a {c}"),
        "yes",
    )


def syllogism_converse(rng: random.Random, traces: Traces) -> Worked:
    a, b = _long_nonsense(rng, 2)
    name = rng.choice(OOD_NAMES)
    return Worked(
        f"Every {a} is a {b}. {name} is a {b}. Does it follow that {name} is a {a}?" + _REPLY,
        (
            f"every {a} is a {b}, but a {b} need not be a {a}",
            f"{name} could be a {b} that is not a {a}",
            "so it does not follow",
        ),
        "no",
    )


def syllogism_exclusion(rng: random.Random, traces: Traces) -> Worked:
    a, b, c = _long_nonsense(rng, 3)
    return Worked(
        f"No {a} is a {b}. Every {c} is a {a}. Could a {c} be a {b}?" + _REPLY,
        (f"every {c} is a {a}", f"no {a} is a {b}", f"so no {c} is a {b}"),
        "no",
    )


def speed_plane(rng: random.Random, traces: Traces) -> Worked:
    speed, hours = rng.randrange(150, 610, 10), rng.randint(7, 12)
    return Worked(
        f"A plane flies {speed * hours} miles in {hours} hours. How many miles does it fly per hour?",
        ("speed = distance ÷ time", f"{speed * hours} ÷ {hours} = {speed}"),
        str(speed),
    )


def time_walk(rng: random.Random, traces: Traces) -> Worked:
    speed, hours, name = rng.randint(3, 5), rng.randint(7, 12), rng.choice(OOD_NAMES)
    return Worked(
        f"Walking at {speed} miles per hour, how many hours does {name} need for "
        f"{speed * hours} miles?",
        ("time = distance ÷ speed", f"{speed * hours} ÷ {speed} = {hours}"),
        str(hours),
    )


def percent_of(rng: random.Random, traces: Traces) -> Worked:
    percent, base = rng.choice(OOD_PERCENTS), rng.randrange(1100, 3050, 50)
    part = Fraction(base * percent, 100)
    return Worked(
        f"Find {percent} percent of {base}.",
        (f"{percent} percent of {base} = {base} × {percent} ÷ 100", f"{base * percent} ÷ 100 = {number(part)}"),
        number(part),
    )  # fmt: skip


def percent_growth(rng: random.Random, traces: Traces) -> Worked:
    percent, base = rng.choice(OOD_PERCENTS), rng.randrange(1100, 10_000, 100)
    growth = base * percent // 100
    return Worked(
        f"A town of {base} people grows by {percent}%. How many people live there after the growth?",
        (f"growth = {base} × {percent} ÷ 100 = {growth}", f"{base} + {growth} = {base + growth}"),
        str(base + growth),
    )


def unit_crate(rng: random.Random, traces: Traces) -> Worked:
    (items, item), count, price = rng.choice(OOD_ITEMS), rng.randint(14, 25), rng.randint(16, 40)
    return Worked(
        f"A crate of {count} {items} sells for ${count * price}. What is the price of a single "
        f"{item} in dollars?",
        (f"one {item} = {count * price} ÷ {count} = {price}",),
        str(price),
    )


def unit_scale(rng: random.Random, traces: Traces) -> Worked:
    items, item = rng.choice(OOD_ITEMS)
    first, second = rng.sample(range(14, 26), 2)
    price = rng.randint(16, 40)
    return Worked(
        f"If {first} {items} cost ${first * price}, what do {second} of them cost in dollars?",
        (f"one {item} = {first * price} ÷ {first} = {price}", f"{second} × {price} = {second * price}"),
        str(second * price),
    )  # fmt: skip


# --- word problems that chain two skills ------------------------------------------------


def combo_unit_sale(rng: random.Random, traces: Traces) -> Worked:
    items, item = rng.choice(OOD_ITEMS)
    count, unit, percent = (
        rng.randint(3, 12),
        rng.randrange(20, 92, 2),
        rng.choice((10, 20, 25, 50)),
    )
    discount = Fraction(unit * percent, 100)
    return Worked(
        f"{count} {items} cost ${count * unit} in all. In a sale, each one is {percent}% cheaper. "
        f"What does one {item} cost in the sale, in dollars?",
        (
            f"one {item} = {count * unit} ÷ {count} = {unit}",
            f"discount = {unit} × {percent} ÷ 100 = {number(discount)}",
            f"sale price = {unit} - {number(discount)} = {number(unit - discount)}",
        ),
        number(unit - discount),
    )


def combo_beads(rng: random.Random, traces: Traces) -> Worked:
    red, blue, jars = worked.with_digits(rng, 2), worked.with_digits(rng, 2), rng.randint(2, 9)
    total = red + blue
    return Worked(
        f"A jar holds {red} red beads and {blue} blue beads. How many beads are in {jars} such jars?",
        (*traces.addition(red, blue), *traces.multiplication(total, jars)),
        str(total * jars),
    )


def combo_speed_distance(rng: random.Random, traces: Traces) -> Worked:
    speed, name = rng.randrange(40, 95, 5), rng.choice(OOD_NAMES)
    hours, later = rng.sample(range(2, 10), 2)
    return Worked(
        f"{name} drives {speed * hours} km in {hours} hours. At the same speed, how far does "
        f"{name} drive in {later} hours?",
        (f"speed = {speed * hours} ÷ {hours} = {speed} km/h", f"distance = {speed} × {later} = {speed * later}"),
        str(speed * later),
    )  # fmt: skip


def combo_tank_percent(rng: random.Random, traces: Traces) -> Worked:
    total, percent_left = rng.randrange(200, 1020, 20), rng.randrange(5, 100, 5)
    left = total * percent_left // 100
    used = total - left
    ratio = Fraction(left, total)
    return Worked(
        f"A tank holds {total} litres. After {used} litres are used, what percent of the water "
        "is left?",
        (
            *traces.subtraction(total, used),
            f"{left} ÷ {total} = {number(ratio)}",
            f"{number(ratio)} × 100 = {percent_left}%",
        ),
        str(percent_left),
    )


def combo_print_words(rng: random.Random, traces: Traces) -> Worked:
    words, price = rng.sample(worked.SHORT_WORDS, rng.randint(3, 7)), rng.randint(2, 9)
    count = len(words)
    return Worked(
        f'Printing costs ${price} per word. How many dollars does it cost to print "{" ".join(words)}"?',
        (*traces.count_words(words), f"{count} × {price} = {count * price}"),
        str(count * price),
    )


def combo_tax(rng: random.Random, traces: Traces) -> Worked:
    items, _ = rng.choice(OOD_ITEMS)
    name, count, price = rng.choice(OOD_NAMES), rng.randint(2, 9), rng.randint(10, 60)
    rate = rng.choice((5, 8, 10, 20))
    cost = count * price
    tax = Fraction(cost * rate, 100)
    return Worked(
        f"{name} buys {count} {items} at ${price} each and pays {rate}% tax on the total. "
        f"How many dollars does {name} pay in all?",
        (
            f"cost = {count} × {price} = {cost}",
            f"tax = {cost} × {rate} ÷ 100 = {number(tax)}",
            f"{cost} + {number(tax)} = {number(cost + tax)}",
        ),
        number(cost + tax),
    )


@attrs.frozen
class OodTemplate:
    id: str  # meta.extra.template of its items
    category: str  # the training family whose skill it asks for, or word_problem
    section: str
    make: Template
    count: int
    difficulty: str = "medium"


def _single(id: str, category: str, make: Template, section: str = "core") -> OodTemplate:
    return OodTemplate(id, category, section, make, 10)


def _combo(id: str, make: Template) -> OodTemplate:
    return OodTemplate(id, "word_problem", OOD_SECTION, make, 12, "hard")


TEMPLATES = (
    _single("ood_add_sum_of", "addition", add_sum_of, "trace_sensitive"),
    _single("ood_add_plus", "addition", add_plus, "trace_sensitive"),
    _single("ood_sub_difference", "subtraction", sub_difference, "trace_sensitive"),
    _single("ood_sub_take_away", "subtraction", sub_take_away, "trace_sensitive"),
    _single("ood_mul_product", "multiplication", mul_product, "trace_sensitive"),
    _single("ood_mul_multiply", "multiplication", mul_multiply, "trace_sensitive"),
    _single("ood_rev_backwards", "string_reversal", rev_backwards),
    _single("ood_rev_letters", "string_reversal", rev_letters),
    _single("ood_rev_words", "string_reversal", rev_words),
    _single("ood_sort_ascending", "sorting", sort_ascending),
    _single("ood_sort_descending", "sorting", sort_descending),
    _single("ood_sort_words", "sorting", sort_words),
    _single("ood_case_lower", "case_change", case_lower),
    _single("ood_case_capitals", "case_change", case_capitals),
    _single("ood_count_words", "word_count", count_words),
    _single("ood_count_letter", "word_count", count_letter),
    _single("ood_syllogism_chain", "syllogism", syllogism_chain),
    _single("ood_syllogism_converse", "syllogism", syllogism_converse),
    _single("ood_syllogism_exclusion", "syllogism", syllogism_exclusion),
    _single("ood_speed_plane", "distance_speed_time", speed_plane),
    _single("ood_time_walk", "distance_speed_time", time_walk),
    _single("ood_percent_of", "percentage", percent_of),
    _single("ood_percent_growth", "percentage", percent_growth),
    _single("ood_unit_crate", "unit_price", unit_crate),
    _single("ood_unit_scale", "unit_price", unit_scale),
    _combo("ood_combo_unit_sale", combo_unit_sale),
    _combo("ood_combo_beads", combo_beads),
    _combo("ood_combo_speed_distance", combo_speed_distance),
    _combo("ood_combo_tank_percent", combo_tank_percent),
    _combo("ood_combo_print_words", combo_print_words),
    _combo("ood_combo_tax", combo_tax),
)


@lru_cache(maxsize=4)
def generate(
    seed: int, traces: Traces, id_prefix: str, source: str
) -> tuple[ReasoningExample, ...]:
    """The ood split for ``seed``: each template's items from its own random stream (the
    same questions whatever ``traces``), templates interleaved so any prefix mixes them."""
    seen: set[str] = set()
    per_template: list[list[ReasoningExample]] = []
    for template in TEMPLATES:
        rng = random.Random(derived_seed(seed, "dev-reasoning-ood", OOD_SEED_VERSION, template.id))
        items: list[ReasoningExample] = []
        attempts = 0
        while len(items) < template.count:
            attempts += 1
            if attempts > 50 * template.count:
                raise RuntimeError(f"{template.id}: too few distinct questions")
            problem = template.make(rng, traces)
            key = " ".join(problem.question.split())
            if key in seen:
                continue
            seen.add(key)
            meta = ExampleMeta(
                template.category,
                template.section,
                template.difficulty,
                source,
                problem.answer_match,
                extra={"template": template.id},
            )
            items.append(
                ReasoningExample(
                    id=f"{id_prefix}-ood-{template.id.removeprefix('ood_')}-{len(items):03d}",
                    question=problem.question,
                    steps=problem.steps,
                    answer=problem.answer,
                    meta=meta,
                )
            )
        per_template.append(items)
    longest = max(len(items) for items in per_template)
    return tuple(items[i] for i in range(longest) for items in per_template if i < len(items))
