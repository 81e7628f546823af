"""Other ways to ask each training question: the same problem, steps and answer, worded
one of several ways.

A model trained on one wording per skill learns the wording, not the skill: the default
recipe's model answered "Find the sum of 366029 and 5954." with subtraction's borrows and
"Write "thermometer" backwards." with a case change. Each rule below matches one question
form of :mod:`tunix_datasets.worked` and lists wordings that ask the same thing; the
form's own wording stays one of them, so eval's questions are still worded as some
training questions are. None of these is a wording of the ``ood`` split
(:mod:`tunix_datasets.ood`), whose tests check its questions against every one of them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import attrs

from tunix_core.data.record import ReasoningExample
from tunix_core.data.splits import derived_seed


@attrs.frozen
class Rewording:
    """Questions that fully match ``pattern`` can be asked as any of ``wordings`` (format
    strings over the pattern's named groups; the first is the form's own wording)."""

    name: str
    pattern: re.Pattern[str]
    wordings: tuple[str, ...]


def _rule(name: str, pattern: str, *wordings: str) -> Rewording:
    return Rewording(name, re.compile(pattern, re.S), wordings)


NUMBER = r"\d+"
PRICE = r"\$[\d.]+"
REWORDINGS = (
    _rule("addition", rf"What is (?P<a>{NUMBER}) \+ (?P<b>{NUMBER})\?",
          "What is {a} + {b}?", "Add {a} and {b}.", "Compute {a} + {b}.",
          "How much is {a} + {b}?", "Calculate the total of {a} and {b}.",
          "What do {a} and {b} add up to?"),
    _rule("subtraction", rf"What is (?P<a>{NUMBER}) - (?P<b>{NUMBER})\?",
          "What is {a} - {b}?", "Subtract {b} from {a}.", "Compute {a} - {b}.",
          "How much is {a} minus {b}?", "What is {a} minus {b}?", "Calculate {a} - {b}."),
    _rule("multiplication", rf"What is (?P<a>{NUMBER}) × (?P<b>{NUMBER})\?",
          "What is {a} × {b}?", "Compute {a} × {b}.", "How much is {a} times {b}?",
          "What is {a} times {b}?", "Calculate {a} × {b}.", "What do you get from {a} × {b}?"),
    _rule("reverse_string", r'Reverse the string "(?P<w>[^"]+)"\.',
          'Reverse the string "{w}".', 'Spell "{w}" from its last letter to its first.',
          'What is "{w}" spelled back to front?', 'Turn "{w}" around, last letter first.',
          'Read "{w}" from right to left. What do you get?'),
    _rule("reverse_words", r'Reverse the order of the words in "(?P<w>[^"]+)"\.',
          'Reverse the order of the words in "{w}".',
          'Say "{w}" with its words from last to first.',
          'List the words of "{w}" starting from the last one.'),
    _rule("sort_words", r"Sort these words alphabetically: (?P<w>.+)\.",
          "Sort these words alphabetically: {w}.", "Order these words from A to Z: {w}.",
          "Alphabetize: {w}.", "List in alphabetical order: {w}."),
    _rule("sort_ascending", r"Sort these numbers in ascending order: (?P<w>.+)\.",
          "Sort these numbers in ascending order: {w}.", "Order from lowest to highest: {w}.",
          "List these numbers, smallest first: {w}.", "Put in increasing order: {w}."),
    _rule("sort_descending", r"Sort these numbers in descending order: (?P<w>.+)\.",
          "Sort these numbers in descending order: {w}.", "Order from highest to lowest: {w}.",
          "List these numbers, largest first: {w}.", "Put in decreasing order: {w}."),
    _rule("count_words", r'How many words are in "(?P<w>[^"]+)"\?',
          'How many words are in "{w}"?', 'What is the number of words in "{w}"?',
          'How many words does "{w}" have?', 'Tell me how many words "{w}" contains.'),
    _rule("count_letter", r'How many times does the letter "(?P<l>\w)" appear in "(?P<w>\w+)"\?',
          'How many times does the letter "{l}" appear in "{w}"?',
          'In "{w}", how many times does "{l}" appear?', 'How many "{l}"s are in "{w}"?',
          'What is the number of "{l}" letters in "{w}"?'),
    _rule("count_vowels", r'How many vowels \(a, e, i, o, u\) are in "(?P<w>[^"]+)"\?',
          'How many vowels (a, e, i, o, u) are in "{w}"?',
          'Count the vowels (a, e, i, o, u) in "{w}".',
          'How many of the letters in "{w}" are vowels (a, e, i, o, u)?'),
    _rule("uppercase", r'Write in uppercase: "(?P<w>[^"]+)"',
          'Write in uppercase: "{w}"', 'Change "{w}" to uppercase.',
          'Make every letter of "{w}" uppercase.', 'Give "{w}" in upper case.'),
    _rule("title_case", r'Write in title case: "(?P<w>[^"]+)"',
          'Write in title case: "{w}"', 'Change "{w}" to title case.',
          'Capitalise the first letter of each word in "{w}".'),
    _rule("swap_case", r'Swap the case of every letter in: "(?P<w>[^"]+)"',
          'Swap the case of every letter in: "{w}"', 'Invert the case of each letter: "{w}"',
          'Flip every letter of "{w}" to the other case.'),
    _rule("travel_distance",
          rf"A bus travels at (?P<s>{NUMBER}) km/h for (?P<h>{NUMBER}) hours\. How many "
          r"kilometres does it cover\?",
          "A bus travels at {s} km/h for {h} hours. How many kilometres does it cover?",
          "How far does a bus go in {h} hours at {s} km/h, in kilometres?",
          "A lorry keeps to {s} km/h for {h} hours. What distance does it cover in km?"),
    _rule("travel_time",
          rf"A train covers (?P<d>{NUMBER}) km at (?P<s>{NUMBER}) km/h\. How many hours does "
          r"the trip take\?",
          "A train covers {d} km at {s} km/h. How many hours does the trip take?",
          "How many hours does a train need to cover {d} km at {s} km/h?",
          "At {s} km/h, how long in hours is a {d} km journey?"),
    _rule("travel_speed",
          rf"A car drives (?P<d>{NUMBER}) km in (?P<h>{NUMBER}) hours\. What is its speed in km/h\?",
          "A car drives {d} km in {h} hours. What is its speed in km/h?",
          "What speed in km/h takes a car {d} km in {h} hours?",
          "A car needs {h} hours for {d} km. How fast does it go, in km/h?"),
    _rule("cycling",
          rf"(?P<n>\w+) cycles at (?P<s>{NUMBER}) km/h for (?P<m>{NUMBER}) minutes\. How many "
          r"kilometres is that\?",
          "{n} cycles at {s} km/h for {m} minutes. How many kilometres is that?",
          "{n} rides a bike at {s} km/h for {m} minutes. How many kilometres does {n} ride?",
          "How many kilometres does {n} cover cycling {m} minutes at {s} km/h?"),
    _rule("average_speed",
          rf"A van drives (?P<d1>{NUMBER}) km at (?P<s1>{NUMBER}) km/h, then (?P<d2>{NUMBER}) km "
          rf"at (?P<s2>{NUMBER}) km/h\. What is its average speed for the whole trip in km/h\?",
          "A van drives {d1} km at {s1} km/h, then {d2} km at {s2} km/h. What is its average "
          "speed for the whole trip in km/h?",
          "A van goes {d1} km at {s1} km/h and then {d2} km at {s2} km/h. In km/h, what is its "
          "average speed over both parts?"),
    _rule("percent_of", rf"What is (?P<p>{NUMBER})% of (?P<b>{NUMBER})\?",
          "What is {p}% of {b}?", "Calculate {p}% of {b}.", "What number is {p}% of {b}?",
          "How much is {p}% of {b}?"),
    _rule("percent_off",
          rf"A (?P<i>\w+) costs \$(?P<c>{NUMBER}) and is sold at (?P<p>{NUMBER})% off\. What is "
          r"the sale price in dollars\?",
          "A {i} costs ${c} and is sold at {p}% off. What is the sale price in dollars?",
          "A ${c} {i} is discounted by {p}%. What does it cost now, in dollars?",
          "With {p}% off, what does a {i} priced at ${c} cost in dollars?"),
    _rule("percent_change",
          rf"A price changes from \$(?P<a>{NUMBER}) to \$(?P<b>{NUMBER})\. By what percent did it "
          r"(?P<d>increase|decrease)\?",
          "A price changes from ${a} to ${b}. By what percent did it {d}?",
          "A price goes from ${a} to ${b}. What is the percent {d}?",
          "By what percent does a price {d} when it moves from ${a} to ${b}?"),
    _rule("unit_one",
          rf"(?P<n>{NUMBER}) (?P<i>\w+) cost \$(?P<c>{NUMBER})\. How many dollars does one cost\?",
          "{n} {i} cost ${c}. How many dollars does one cost?",
          "The price of {n} {i} is ${c}. How much is one, in dollars?",
          "{n} {i} come to ${c}. What is the cost of one in dollars?"),
    _rule("unit_more",
          rf"(?P<n>{NUMBER}) (?P<i>\w+) cost (?P<c>{PRICE})\. At the same price, how many "
          rf"dollars do (?P<m>{NUMBER}) (?P<j>\w+) cost\?",
          "{n} {i} cost {c}. At the same price, how many dollars do {m} {j} cost?",
          "The price of {n} {i} is {c}. What would {m} {j} cost at that price, in dollars?",
          "{n} {i} come to {c}. In dollars, how much are {m} {j} at the same price?"),
)  # fmt: skip


def matching_rule(question: str) -> tuple[Rewording, dict[str, str]] | None:
    """The rule whose pattern ``question`` fully matches, with the fields it matched."""
    for rule in REWORDINGS:
        if match := rule.pattern.fullmatch(question):
            return rule, match.groupdict()
    return None


def reword(examples: Sequence[ReasoningExample], seed: int, name: str) -> list[ReasoningExample]:
    """``examples`` with each question a rule matches asked in one of the rule's wordings,
    chosen per item from ``(seed, name, item id)``; the rest unchanged."""
    reworded = []
    for example in examples:
        found = matching_rule(example.question)
        if found is None:
            reworded.append(example)
            continue
        rule, fields = found
        rng = random.Random(derived_seed(seed, name, "wording", example.id))
        wording = rng.choice(rule.wordings)
        reworded.append(attrs.evolve(example, question=wording.format(**fields)))
    return reworded
