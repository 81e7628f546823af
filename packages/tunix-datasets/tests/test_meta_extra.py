"""``meta.extra``: named texts an item carries for its evaluators and answer checks, and
answer checks that read them (``takes_meta``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tunix_core.data.record import (
    ExampleMeta,
    FieldError,
    ReasoningExample,
    example_from_dict,
    example_to_dict,
    read_jsonl,
    write_jsonl,
)
from tunix_core.errors import DataError
from tunix_core.evaluation import check_answer, example_meta
from tunix_core.protocols import (
    AnswerCheckRegistry,
    AnswerOptions,
    AnswerVerdict,
    Prediction,
    TransformRegistry,
)
from tunix_datasets.providers.files import JsonlProvider
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

CODE = "def f():\n\treturn 1\n"  # a tab and a final newline must survive


def _example(extra: dict[str, str]) -> ReasoningExample:
    return ReasoningExample("x1", "Q?", ("s",), "A", ExampleMeta("code", extra=extra))


def test_extra_round_trips_through_a_file_byte_for_byte(tmp_path: Path) -> None:
    example = _example({"test": CODE, "entry_point": "f"})
    path = tmp_path / "items.jsonl"
    write_jsonl([example], path)
    assert read_jsonl(path) == [example]
    assert read_jsonl(path)[0].meta.extra["test"] == CODE
    # Written sorted by name; a record without extra is written exactly as before.
    assert list(example_to_dict(example)["meta"]["extra"]) == ["entry_point", "test"]
    assert "extra" not in example_to_dict(_example({}))["meta"]


def test_extra_is_copied_and_the_record_still_hashes() -> None:
    given = {"test": CODE}
    example = _example(given)
    given["test"] = "changed"
    assert example.meta.extra == {"test": CODE}
    assert hash(example) == hash(_example({"test": "other"}))  # extra is left out of the hash


@pytest.mark.parametrize(
    ("extra", "field", "problem"),
    [
        ({"Test": "x"}, "extra", "names must be lowercase"),
        ({"category": "x"}, "extra.category", "a meta field of its own"),
        ({"test": 3}, "extra.test", "must be a string, got int"),
        ("test", "extra", "must be an object, got str"),
    ],
)
def test_bad_extra_names_the_field(extra: Any, field: str, problem: str) -> None:
    with pytest.raises(FieldError, match=problem) as caught:
        ExampleMeta("code", extra=extra)
    assert caught.value.field == field


def test_a_bad_extra_in_a_file_names_the_line_and_field(tmp_path: Path) -> None:
    record = example_to_dict(_example({"test": CODE}))
    record["meta"]["extra"] = {"test": ["not", "text"]}
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:1: field 'meta\.extra\.test': must be a string"):
        read_jsonl(path)
    with pytest.raises(FieldError, match=r"meta\.extra"):
        example_from_dict({**record, "meta": {"category": "c", "extra": {"1x": "y"}}})


def test_predictions_carry_extra_flat() -> None:
    meta = example_meta(_example({"test": CODE, "entry_point": "f"}))
    assert meta["test"] == CODE and meta["entry_point"] == "f" and meta["category"] == "code"


class _SeesMeta:
    """A check that reads the item's meta: correct when the answer equals meta.secret."""

    takes_meta = True

    def __call__(
        self, answer: str, expected: str, options: AnswerOptions, *, meta: Mapping[str, Any]
    ) -> AnswerVerdict:
        if "secret" not in meta:
            raise ValueError("needs meta.secret")
        return AnswerVerdict(answer == meta["secret"], "secret")


seen_meta = _SeesMeta()


def test_a_check_that_takes_meta_gets_the_items_meta() -> None:
    checks = AnswerCheckRegistry()
    checks.register("secret", f"{__name__}:seen_meta")
    meta = {"category": "c", "answer_match": "secret", "secret": "42"}
    prediction = Prediction("p1", "", "", "ignored", meta)
    assert check_answer(prediction, "42", checks).correct
    assert not check_answer(prediction, "41", checks).correct
    without = Prediction("p2", "", "", "ignored", {"answer_match": "secret"})
    with pytest.raises(DataError, match=r"item 'p2': answer check 'secret': needs meta\.secret"):
        check_answer(without, "42", checks)


def test_jsonl_files_keep_extra_and_name_a_bad_one(tmp_path: Path) -> None:
    example = _example({"test": CODE, "entry_point": "f"})
    path = tmp_path / "exported.jsonl"
    write_jsonl([example], path)
    loaded = JsonlProvider().load("train", argument=str(path), seed=0, transforms=TRANSFORMS, options={"eval_fraction": 0.5})
    assert loaded[0].meta.extra == example.meta.extra
    record = example_to_dict(example)
    record["meta"]["extra"] = {"test": 1}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"exported\.jsonl:1: field 'meta\.extra\.test': must be a string"):
        JsonlProvider().load("train", argument=str(path), seed=0, transforms=TRANSFORMS, options={"eval_fraction": 0.5})
