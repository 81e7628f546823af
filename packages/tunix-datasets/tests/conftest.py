"""Fixtures of the data tests: an independent solver of generated questions, so tests can
check that every answer follows from its question (not from the generator's own code)."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from types import SimpleNamespace

import pytest

from tunix_core.protocols import DatasetRegistry, TransformRegistry
from tunix_datasets.providers import register_builtin_datasets
from tunix_datasets.transforms import register_builtin_transforms


def _num(text: str) -> Fraction:
    return Fraction(text.replace("$", ""))


def _canonical(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.10f}".rstrip("0").rstrip(".")


def _syllogism(question: str) -> str | None:
    subsets: dict[str, set[str]] = {}
    disjoint: list[tuple[str, str]] = []
    member: dict[str, str] = {}
    for a, b in re.findall(r"All (\w+)s are (\w+)s\.", question):
        subsets.setdefault(a, set()).add(b)
    for a, b in re.findall(r"No (\w+)s are (\w+)s\.", question):
        disjoint.append((a, b))
    for name, kind in re.findall(r"(\w+) is an? (\w+)\.", question):
        member[name] = kind

    def supersets(kind: str) -> set[str]:
        seen, todo = {kind}, [kind]
        while todo:
            for nxt in subsets.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    if m := re.search(r"Are all (\w+)s (\w+)s\?", question):
        return "yes" if m[2] in supersets(m[1]) else "no"
    if m := re.search(r"Is (\w+) an? (\w+)\?", question):
        return "yes" if m[2] in supersets(member[m[1]]) else "no"
    if m := re.search(r"Must (\w+) be an? (\w+)\?", question):
        return "yes" if m[2] in supersets(member[m[1]]) else "no"
    if m := re.search(r"Can an? (\w+) be an? (\w+)\?", question):
        up_a, up_b = supersets(m[1]), supersets(m[2])
        separated = any((x in up_a and y in up_b) or (y in up_a and x in up_b) for x, y in disjoint)
        return "no" if separated else None
    return None


def derive_answer(question: str) -> str | None:
    """The answer to a generated question, worked out from its text alone (None: unknown form)."""
    q = question
    if m := re.fullmatch(r"What is (\d+) ([-+×]) (\d+)\?", q):
        a, op, b = int(m[1]), m[2], int(m[3])
        return str({"+": a + b, "-": a - b, "×": a * b}[op])
    if m := re.search(r"travels at (\d+) km/h for (\d+) hours", q):
        return _canonical(_num(m[1]) * _num(m[2]))
    if m := re.search(r"covers (\d+) km at (\d+) km/h", q):
        return _canonical(_num(m[1]) / _num(m[2]))
    if m := re.search(r"drives (\d+) km in (\d+) hours", q):
        return _canonical(_num(m[1]) / _num(m[2]))
    if m := re.search(r"at (\d+) km/h for (\d+) minutes", q):
        return _canonical(_num(m[1]) * _num(m[2]) / 60)
    if m := re.search(r"drives (\d+) km at (\d+) km/h, then (\d+) km at (\d+) km/h", q):
        d1, s1, d2, s2 = map(_num, m.groups())
        return _canonical((d1 + d2) / (d1 / s1 + d2 / s2))
    if m := re.fullmatch(r"What is (\d+)% of (\d+)\?", q):
        return _canonical(_num(m[1]) * _num(m[2]) / 100)
    if m := re.search(r"costs \$(\d+) and is sold at (\d+)% off", q):
        return _canonical(_num(m[1]) * (100 - _num(m[2])) / 100)
    if m := re.search(r"changes from \$(\d+) to \$(\d+)\. By what percent", q):
        old, new = _num(m[1]), _num(m[2])
        return _canonical(abs(new - old) / old * 100)
    if m := re.search(
        r"Pack A has (\d+) \w+ for \$(\d+\.\d\d)\. Pack B has (\d+) for \$(\d+\.\d\d)", q
    ):
        na, ta, nb, tb = map(_num, m.groups())
        return "A" if ta / na < tb / nb else "B"
    if m := re.search(
        r"^(\d+) \w+ cost \$(\d+\.\d\d)\. At the same price, how many dollars do (\d+)", q
    ):
        return _canonical(_num(m[2]) / _num(m[1]) * _num(m[3]))
    if m := re.search(r"^(\d+) \w+ cost \$(\d+)\. How many dollars does one cost", q):
        return _canonical(_num(m[2]) / _num(m[1]))
    if m := re.fullmatch(r'Reverse the string "(.+)"\.', q, re.S):
        return m[1][::-1]
    if m := re.fullmatch(r'Reverse the order of the words in "(.+)"\.', q):
        return " ".join(reversed(m[1].split()))
    if m := re.fullmatch(r"Sort these numbers in (ascending|descending) order: (.+)\.", q):
        values = sorted((int(v) for v in m[2].split(", ")), reverse=m[1] == "descending")
        return ", ".join(map(str, values))
    if m := re.fullmatch(r"Sort these words alphabetically: (.+)\.", q):
        return ", ".join(sorted(m[1].split(", ")))
    if "Answer yes or no." in q and ("All " in q or "No " in q):
        return _syllogism(q)
    if m := re.fullmatch(r'\s*How many words are in "(.*)"\?\s*', q, re.S):
        return str(len(m[1].split()))
    if m := re.fullmatch(r'How many times does the letter "(\w)" appear in "(\w+)"\?', q):
        return str(m[2].count(m[1]))
    if m := re.fullmatch(r'How many vowels \(a, e, i, o, u\) are in "(.+)"\?', q):
        return str(sum(ch in "aeiou" for ch in m[1]))
    if m := re.fullmatch(r'Write in uppercase: "(.+)"', q):
        return m[1].upper()
    if m := re.fullmatch(r'Write in title case: "(.+)"', q):
        return " ".join(w.capitalize() for w in m[1].split())
    if m := re.fullmatch(r'Swap the case of every letter in: "(.+)"', q):
        return m[1].swapcase()
    if m := re.search(r"How many \w+ are on shelves (\w) and (\w) together\?", q):
        counts = dict(re.findall(r"shelf (\w) has (\d+)", q))
        return str(int(counts[m[1]]) + int(counts[m[2]]))
    if m := re.fullmatch(r"Which is larger, (\d+) or (\d+)\?", q):
        return str(max(int(m[1]), int(m[2])))
    if m := re.fullmatch(r"What number comes after (\d+)\?", q):
        return str(int(m[1]) + 1)
    if m := re.fullmatch(r"What is double (\d+)\?", q):
        return str(2 * int(m[1]))
    if m := re.fullmatch(r"Is (\d+) an even number\? Answer yes or no\.", q):
        return "yes" if int(m[1]) % 2 == 0 else "no"
    if m := re.fullmatch(r'How many letters are in "(\w+)"\?', q):
        return str(len(m[1]))
    if m := re.fullmatch(r'Write "(\w+)" in uppercase\.', q):
        return m[1].upper()
    return None


@pytest.fixture
def solve() -> Callable[[str], str | None]:
    return derive_answer


@pytest.fixture
def builtin_registry() -> DatasetRegistry:
    registry = DatasetRegistry()
    register_builtin_datasets(registry)
    return registry


@pytest.fixture
def host(builtin_registry: DatasetRegistry) -> SimpleNamespace:
    """What the datasets commands need from the plugin host: its dataset and transform
    registries."""
    transforms = TransformRegistry()
    register_builtin_transforms(transforms)
    return SimpleNamespace(datasets=builtin_registry, transforms=transforms)
