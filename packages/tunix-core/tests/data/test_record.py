from __future__ import annotations

import json
from pathlib import Path

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


def _example(**changes: object) -> ReasoningExample:
    fields: dict[str, object] = {
        "id": "ex-1",
        "question": "What is 2 + 3?",
        "steps": ["ones: 2 + 3 = 5", "2 + 3 = 5"],
        "answer": "5",
        "meta": ExampleMeta("addition", "trace_sensitive", "easy", "test"),
    }
    fields.update(changes)
    return ReasoningExample(**fields)  # type: ignore[arg-type]


def _record(**changes: object) -> dict[str, object]:
    data = example_to_dict(_example())
    data.update(changes)
    return data


def _write_lines(path: Path, *records: object) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    return path


def test_round_trip_keeps_every_field_and_unicode(tmp_path: Path) -> None:
    examples = [_example(), _example(id="ex-2", question='  Reverse "café"\t', answer="éfac")]
    path = tmp_path / "out.jsonl"
    write_jsonl(examples, path)
    assert read_jsonl(path) == examples
    assert "café" in path.read_text(encoding="utf-8")


def test_writing_twice_gives_identical_bytes(tmp_path: Path) -> None:
    write_jsonl([_example()], tmp_path / "a.jsonl")
    write_jsonl([_example()], tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_dict_has_fixed_key_order_and_steps_as_list() -> None:
    data = example_to_dict(_example())
    assert list(data) == ["id", "question", "steps", "answer", "meta"]
    assert list(data["meta"]) == ["category", "section", "difficulty", "source"]
    assert data["steps"] == ["ones: 2 + 3 = 5", "2 + 3 = 5"]


def test_steps_given_as_list_become_a_tuple_and_records_are_frozen() -> None:
    example = _example()
    assert example.steps == ("ones: 2 + 3 = 5", "2 + 3 = 5")
    with pytest.raises(AttributeError):
        example.answer = "6"  # type: ignore[misc]


def test_meta_defaults() -> None:
    example = example_from_dict(_record(meta={"category": "misc"}))
    assert example.meta == ExampleMeta("misc", "core", "easy", "", "auto")


def test_answer_match_is_written_only_when_it_is_not_auto(tmp_path: Path) -> None:
    strict = _example(meta=ExampleMeta("case_change", "core", "easy", "test", "exact"))
    assert example_to_dict(strict)["meta"] == {"category": "case_change", "section": "core",
                                               "difficulty": "easy", "source": "test",
                                               "answer_match": "exact"}  # fmt: skip
    assert "answer_match" not in example_to_dict(_example())["meta"]
    path = tmp_path / "mixed.jsonl"
    write_jsonl([strict, _example(id="ex-2")], path)
    assert [e.meta.answer_match for e in read_jsonl(path)] == ["exact", "auto"]


def test_a_bad_answer_match_names_file_line_and_field(tmp_path: Path) -> None:
    bad = _record(id="ex-2", meta={"category": "a", "answer_match": "yes no"})
    path = _write_lines(tmp_path / "bad.jsonl", _record(), bad)
    with pytest.raises(DataError) as caught:
        read_jsonl(path)
    assert str(caught.value) == (
        f"{path}:2: field 'meta.answer_match': must name an answer check (lowercase letters, "
        "digits, '_' or '-'), got 'yes no'"
    )


@pytest.mark.parametrize(
    ("record", "field", "problem"),
    [
        ({"answer": ""}, "answer", "must not be empty"),
        ({"answer": 5}, "answer", "must be a string"),
        ({"answer": " 5"}, "answer", "whitespace"),
        ({"question": "   "}, "question", "must not be empty"),
        ({"steps": []}, "steps", "at least one step"),
        ({"steps": "one step"}, "steps", "must be a list"),
        ({"steps": ["fine", "two\nlines"]}, "steps[1]", "one line"),
        ({"steps": ["fine", 3]}, "steps[1]", "must be a string"),
        ({"answer": "<answer>5</answer>"}, "answer", "markup"),
        ({"steps": ["x</reasoning>"]}, "steps[0]", "markup"),
        (
            {"meta": {"category": "a", "difficulty": "extreme"}},
            "meta.difficulty",
            "easy, medium, hard",
        ),
        ({"meta": {"section": "core"}}, "meta.category", "is required"),
        ({"meta": {"category": "a", "level": 3}}, "meta.level", "unknown field"),
        ({"meta": "addition"}, "meta", "must be an object"),
        ({"meta": {"category": "a", "answer_match": 1}}, "meta.answer_match", "must be a string"),
        (
            {"meta": {"category": "a", "answer_match": "Exact"}},
            "meta.answer_match",
            "must name an answer check (lowercase letters, digits, '_' or '-'), got 'Exact'",
        ),
        ({"meta": {"category": "a", "answer_match": ""}}, "meta.answer_match", "got ''"),
        ({"extra": 1}, "extra", "unknown field"),
        # Lone surrogates (from a provider's own strings; a JSONL reader refuses them first).
        ({"question": "What is \ud800?"}, "question", "a lone surrogate"),
        ({"steps": ["ok", "x\udfff"]}, "steps[1]", "a lone surrogate"),
        ({"meta": {"category": "a", "source": "\udc00"}}, "meta.source", "a lone surrogate"),
        ({"meta": {"category": "a", "extra": {"test": "\ud83d"}}}, "meta.extra.test", "surrogate"),
    ],
)
def test_invalid_records_name_the_field(
    record: dict[str, object], field: str, problem: str
) -> None:
    with pytest.raises(FieldError) as caught:
        example_from_dict(_record(**record))
    assert caught.value.field == field
    assert problem in caught.value.problem


def test_missing_field_is_named() -> None:
    data = _record()
    del data["steps"]
    with pytest.raises(FieldError, match="field 'steps': is required"):
        example_from_dict(data)


def test_read_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(_record()) + "\n\n" + json.dumps(_record(id="ex-2", steps=["ok", ""])) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as caught:
        read_jsonl(path)
    assert str(caught.value) == f"{path}:3: field 'steps[1]': must not be empty"


def test_read_reports_invalid_json_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(json.dumps(_record()) + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken\.jsonl:2: invalid JSON"):
        read_jsonl(path)


def test_read_refuses_duplicate_ids_naming_both_lines(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "dup.jsonl", _record(), _record(question="Other?"))
    with pytest.raises(DataError, match=r"dup\.jsonl:2: field 'id': 'ex-1' already used on line 1"):
        read_jsonl(path)


def test_read_refuses_non_object_lines(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "list.jsonl", [1, 2])
    with pytest.raises(DataError, match=r"list\.jsonl:1: field 'record': must be a JSON object"):
        read_jsonl(path)


def test_read_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_jsonl(tmp_path / "absent.jsonl")
