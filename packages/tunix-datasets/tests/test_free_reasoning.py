"""Free-form ``reasoning`` keeps its text byte for byte: read -> render -> export -> read."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from tunix_core.data.record import (
    ExampleMeta,
    FieldError,
    ReasoningExample,
    example_from_dict,
    example_to_dict,
    read_jsonl,
)
from tunix_core.data.render import render_example
from tunix_core.protocols import TransformRegistry
from tunix_datasets.cli import datasets
from tunix_datasets.providers.files import HfProvider, JsonlProvider
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

FIXTURE = Path(__file__).parent / "fixtures" / "code_reasoning.jsonl"
# The texts as the fixture file holds them, decoded by nothing of ours.
RAW = {row["id"]: row for row in map(json.loads, FIXTURE.read_text("utf-8").splitlines())}


def test_the_fixture_holds_indented_code() -> None:
    reasoning = RAW["code-factorial"]["reasoning"]
    assert "\n    result = 1\n" in reasoning and "\n        result *= k" in reasoning


@pytest.mark.parametrize("provider", [JsonlProvider(), HfProvider()], ids=["jsonl", "hf"])
def test_providers_keep_reasoning_byte_for_byte(provider: object) -> None:
    examples = provider.load("train", argument=str(FIXTURE), seed=0, transforms=TRANSFORMS, options={})  # type: ignore[attr-defined]
    by_id = {e.id: e for e in examples}
    for example_id, row in RAW.items():
        example = by_id[example_id]
        if "reasoning" in row:
            assert example.reasoning == row["reasoning"]
            assert example.steps == ()
        else:
            assert (example.reasoning, list(example.steps)) == (None, row["steps"])


def test_rendering_puts_the_reasoning_in_unchanged() -> None:
    example = read_jsonl(FIXTURE)[0]
    completion = render_example(example).completion
    assert completion == (
        f"<reasoning>{RAW['code-factorial']['reasoning']}</reasoning>"
        "<answer>24</answer><end_of_turn>"
    )


def test_read_render_export_read_round_trip(tmp_path: Path, host: SimpleNamespace) -> None:
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(
        datasets,
        ["export", f"jsonl:{FIXTURE}", "--split", "train", "--out", str(out)],
        obj=host,
    )
    assert result.exit_code == 0, result.output
    again = read_jsonl(out)
    assert [e.reasoning for e in again] == [row.get("reasoning") for row in RAW.values()]
    # The export's reasoning is the fixture's JSON string, escapes and all.
    for line, row in zip(out.read_text("utf-8").splitlines(), RAW.values(), strict=True):
        if "reasoning" in row:
            assert json.dumps(row["reasoning"], ensure_ascii=False) in line
    rendered = CliRunner().invoke(
        datasets,
        ["export", f"jsonl:{out}", "--split", "train", "--format", "rendered",
         "--out", str(tmp_path / "r.jsonl")],
        obj=host,
    )  # fmt: skip
    assert rendered.exit_code == 0, rendered.output
    completions = [json.loads(line)["completion"] for line in (tmp_path / "r.jsonl").open()]
    assert completions == [render_example(e).completion for e in read_jsonl(FIXTURE)]


def test_steps_records_still_write_steps_and_no_reasoning_key() -> None:
    example = ReasoningExample("a", "Q?", ("s",), "1", ExampleMeta("c"))
    assert list(example_to_dict(example)) == ["id", "question", "steps", "answer", "meta"]
    assert example.reasoning_text == "s"


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({"steps": ["s"], "reasoning": "r"}, "steps", "give steps or reasoning, not both"),
        ({}, "steps", "is required (or reasoning)"),
        ({"reasoning": "  \n"}, "reasoning", "must not be empty"),
        ({"reasoning": "a <answer>"}, "reasoning", "must not contain the format markup"),
        ({"reasoning": 3}, "reasoning", "must be a string"),
    ],
)
def test_bad_reasoning_names_the_field(data: dict[str, object], field: str, problem: str) -> None:
    record = {"id": "a", "question": "Q?", "answer": "1", "meta": {"category": "c"}, **data}
    with pytest.raises(FieldError) as caught:
        example_from_dict(record)
    assert caught.value.field == field and problem in caught.value.problem
