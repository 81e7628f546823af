from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunix_core.config import ConfigError
from tunix_core.data.record import ExampleMeta, ReasoningExample, example_to_dict, write_jsonl
from tunix_core.errors import DataError
from tunix_core.protocols import DatasetProvider, TransformRegistry
from tunix_datasets.providers.files import HfProvider, JsonlProvider
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)


def _examples(count: int) -> list[ReasoningExample]:
    return [
        ReasoningExample(
            f"q{i}", f"What is {i} + 1?", (f"{i} + 1 = {i + 1}",), str(i + 1),
            ExampleMeta("addition", "core", "easy", "mine"),
        )
        for i in range(count)
    ]  # fmt: skip


def _user_rows(count: int) -> list[dict[str, Any]]:
    """Rows in a user's own column names: a numeric target, the rationale as one string."""
    return [
        {
            "prompt": f"Double {i}?",
            "target": 2 * i,
            "rationale": f"{i} × 2\n\n = {2 * i} ",
            "tag": "x",
        }
        for i in range(1, count + 1)
    ]


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


MAPPING = {"columns": {"question": "prompt", "answer": "target", "steps": "rationale"}}


def _load(
    provider: Any, split: str, path: Path, options: dict[str, Any] | None = None, seed: int = 0
) -> list[ReasoningExample]:
    return provider.load(split, argument=str(path), seed=seed, transforms=TRANSFORMS, options=options or {})


def test_providers_satisfy_the_protocol() -> None:
    assert isinstance(JsonlProvider(), DatasetProvider)
    assert isinstance(HfProvider(), DatasetProvider)


def test_jsonl_records_in_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    write_jsonl(_examples(3), path)
    assert _load(JsonlProvider(), "train", path) == _examples(3)


def test_jsonl_column_mapping_numeric_answer_and_string_steps(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "user.jsonl", _user_rows(2))
    first = _load(JsonlProvider(), "train", path, MAPPING)[0]
    assert first == ReasoningExample(
        "user-1",
        "Double 1?",
        ("1 × 2", "= 2"),
        "2",
        ExampleMeta("user", "core", "easy", "jsonl:user.jsonl"),
    )


def test_jsonl_maps_meta_columns(tmp_path: Path) -> None:
    rows = [
        {
            "uid": "a",
            "question": "Q?",
            "steps": ["s"],
            "answer": "A",
            "kind": "logic",
            "level": "hard",
        }
    ]
    options = {"columns": {"id": "uid", "category": "kind", "difficulty": "level"}}
    example = _load(JsonlProvider(), "train", _write_rows(tmp_path / "m.jsonl", rows), options)[0]
    assert (example.id, example.meta.category, example.meta.difficulty) == ("a", "logic", "hard")


def test_jsonl_answer_match_from_meta_or_a_column(tmp_path: Path) -> None:
    nested = [{"question": "Q?", "steps": ["s"], "answer": "AB",
               "meta": {"category": "case", "answer_match": "exact"}}]  # fmt: skip
    example = _load(JsonlProvider(), "train", _write_rows(tmp_path / "n.jsonl", nested))[0]
    assert example.meta.answer_match == "exact"
    rows = [{**row, "check": "number"} for row in _user_rows(1)]
    options = {"columns": {**MAPPING["columns"], "answer_match": "check"}}
    example = _load(JsonlProvider(), "train", _write_rows(tmp_path / "c.jsonl", rows), options)[0]
    assert example.meta.answer_match == "number"
    assert _load(JsonlProvider(), "train", _write_rows(tmp_path / "u.jsonl", _user_rows(1)),
                 MAPPING)[0].meta.answer_match == "auto"  # fmt: skip


def test_jsonl_bad_answer_match_names_file_line_and_column(tmp_path: Path) -> None:
    rows = [{**row, "check": "Exact!"} for row in _user_rows(2)]
    options = {"columns": {**MAPPING["columns"], "answer_match": "check"}}
    with pytest.raises(DataError, match=r"c\.jsonl:1: field 'check': must name an answer check"):
        _load(JsonlProvider(), "train", _write_rows(tmp_path / "c.jsonl", rows), options)


def test_jsonl_default_category_option(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "user.jsonl", _user_rows(1))
    example = _load(JsonlProvider(), "train", path, {**MAPPING, "category": "doubling"})[0]
    assert example.meta.category == "doubling"


def test_jsonl_errors_name_file_line_and_column(tmp_path: Path) -> None:
    rows = _user_rows(3)
    rows[2]["rationale"] = "   "
    path = tmp_path / "user.jsonl"
    path.write_text(
        json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n" + json.dumps(rows[2]) + "\n"
    )
    with pytest.raises(DataError) as caught:
        _load(JsonlProvider(), "train", path, MAPPING)
    assert (
        str(caught.value)
        == f"{path}:4: field 'rationale': must hold at least one step, or give reasoning (the text to learn from)"
    )


def test_jsonl_missing_mapped_column(tmp_path: Path) -> None:
    rows = _user_rows(2)
    del rows[1]["target"]
    with pytest.raises(
        DataError, match=r"user\.jsonl:2: field 'target': column mapped to 'answer' is missing"
    ):
        _load(JsonlProvider(), "train", _write_rows(tmp_path / "user.jsonl", rows), MAPPING)


def test_jsonl_missing_unmapped_field_suggests_the_mapping(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"field 'question': is required \(map another column"):
        _load(JsonlProvider(), "train", _write_rows(tmp_path / "u.jsonl", _user_rows(1)))


def test_jsonl_duplicate_ids(tmp_path: Path) -> None:
    rows = [example_to_dict(e) for e in _examples(2)]
    rows[1]["id"] = "q0"
    with pytest.raises(
        DataError, match=r"d\.jsonl:2: field 'id': 'q0' already used at .*d\.jsonl:1"
    ):
        _load(JsonlProvider(), "train", _write_rows(tmp_path / "d.jsonl", rows))


def test_single_source_needs_an_eval_option(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "user.jsonl", _user_rows(3))
    with pytest.raises(DataError, match=r"single source: set dataset\.options\.eval_fraction"):
        _load(JsonlProvider(), "eval", path, MAPPING)


def test_eval_fraction_split_is_seeded_disjoint_and_complete(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "user.jsonl", _user_rows(40))
    options = {**MAPPING, "eval_fraction": 0.25}
    train = _load(JsonlProvider(), "train", path, options, seed=1)
    evaluation = _load(JsonlProvider(), "eval", path, options, seed=1)
    assert len(evaluation) == 10 and len(train) == 30
    assert not {e.id for e in train} & {e.id for e in evaluation}
    assert _load(JsonlProvider(), "eval", path, options, seed=1) == evaluation
    assert _load(JsonlProvider(), "eval", path, options, seed=2) != evaluation


def test_eval_path(tmp_path: Path) -> None:
    write_jsonl(_examples(4), tmp_path / "train.jsonl")
    write_jsonl(_examples(2), tmp_path / "eval.jsonl")
    options = {"eval_path": str(tmp_path / "eval.jsonl")}
    assert len(_load(JsonlProvider(), "train", tmp_path / "train.jsonl", options)) == 4
    assert len(_load(JsonlProvider(), "eval", tmp_path / "train.jsonl", options)) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eval_fraction": 1.5}, "dataset.options.eval_fraction: must be between 0 and 1"),
        (
            {"columns": {"prompt": "question"}},
            "dataset.options.columns: unknown record field 'prompt'",
        ),
        ({"eval_fraction": 0.1, "eval_path": "x.jsonl"}, "eval_path or eval_fraction, not both"),
        ({"colums": {}}, "dataset.options.colums: unknown key"),
    ],
)
def test_options_are_validated(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    write_jsonl(_examples(2), tmp_path / "a.jsonl")
    with pytest.raises(ConfigError, match=message):
        _load(JsonlProvider(), "train", tmp_path / "a.jsonl", options)


def test_jsonl_needs_a_path_and_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs a path: jsonl:PATH"):
        JsonlProvider().load("train", argument=None, seed=0, transforms=TRANSFORMS, options={})
    with pytest.raises(DataError, match="no such file"):
        _load(JsonlProvider(), "train", tmp_path / "absent.jsonl")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no records"):
        _load(JsonlProvider(), "train", tmp_path / "empty.jsonl")


def test_bad_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no split 'valid'; available: train, eval"):
        _load(JsonlProvider(), "valid", tmp_path / "x.jsonl")


# --- hf: PATH ---------------------------------------------------------------------------


def _parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_hf_parquet_with_mapping_and_eval_fraction(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "user.parquet", _user_rows(20))
    options = {**MAPPING, "eval_fraction": 0.2}
    train = _load(HfProvider(), "train", path, options)
    evaluation = _load(HfProvider(), "eval", path, options)
    assert (len(train), len(evaluation)) == (16, 4)
    by_id = {e.id: e for e in train + evaluation}
    assert len(by_id) == 20
    assert by_id["user-1"] == ReasoningExample(
        "user-1",
        "Double 1?",
        ("1 × 2", "= 2"),
        "2",
        ExampleMeta("user", "core", "easy", "hf:user.parquet"),
    )
    # The same rows give the same split as the JSONL provider.
    jsonl = _write_rows(tmp_path / "user.jsonl", _user_rows(20))
    assert [e.question for e in _load(JsonlProvider(), "eval", jsonl, options)] == [
        e.question for e in evaluation
    ]


def test_hf_parquet_list_steps_and_nested_meta(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "native.parquet", [example_to_dict(e) for e in _examples(3)])
    loaded = _load(HfProvider(), "train", path)
    assert [(e.question, e.steps, e.answer, e.meta.category) for e in loaded] == [
        (e.question, e.steps, e.answer, e.meta.category) for e in _examples(3)
    ]


def test_hf_error_names_the_row_and_column(tmp_path: Path) -> None:
    rows = _user_rows(3)
    rows[1]["prompt"] = ""
    path = _parquet(tmp_path / "user.parquet", rows)
    with pytest.raises(DataError, match=r"user\.parquet row 2: field 'prompt': must not be empty"):
        _load(HfProvider(), "train", path, MAPPING)


def test_hf_save_to_disk_folder_with_its_own_splits(tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "saved"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(_user_rows(5)),
            "test": datasets.Dataset.from_list(_user_rows(8)[5:]),
        }
    ).save_to_disk(str(folder))
    assert len(_load(HfProvider(), "train", folder, MAPPING)) == 5
    evaluation = _load(HfProvider(), "eval", folder, MAPPING)
    assert [e.question for e in evaluation] == ["Double 6?", "Double 7?", "Double 8?"]
    with pytest.raises(DataError, match="has no split 'dev' for eval; it has train, test"):
        _load(HfProvider(), "eval", folder, {**MAPPING, "eval_split": "dev"})


def test_hf_folder_with_only_train_can_split_it(tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "only-train"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(_user_rows(10))}).save_to_disk(
        str(folder)
    )
    options = {**MAPPING, "eval_fraction": 0.3}
    assert len(_load(HfProvider(), "eval", folder, options)) == 3
    assert len(_load(HfProvider(), "train", folder, options)) == 7


def test_hf_single_dataset_folder_and_arrow_file(tmp_path: Path) -> None:
    import datasets

    folder = tmp_path / "single"
    datasets.Dataset.from_list(_user_rows(4)).save_to_disk(str(folder))
    assert len(_load(HfProvider(), "train", folder, MAPPING)) == 4
    arrow = next(folder.glob("*.arrow"))
    assert [e.answer for e in _load(HfProvider(), "train", arrow, MAPPING)] == ["2", "4", "6", "8"]


def test_hf_missing_path_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"no such file or folder \(.*nothing is downloaded"):
        _load(HfProvider(), "train", tmp_path / "org" / "name")
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"expected a \.parquet, \.arrow, \.json or \.jsonl file"):
        _load(HfProvider(), "train", tmp_path / "data.csv")


def test_hf_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"broken\.parquet: cannot read as a Hugging Face dataset"):
        _load(HfProvider(), "train", tmp_path / "broken.parquet")
