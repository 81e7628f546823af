"""The row shapes of ``jsonl:``/``hf:`` (chat messages, prompt/completion) and transforms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tunix_core.data.record import ReasoningExample
from tunix_core.errors import ConfigError, DataError
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, get_host, plugin_module
from tunix_core.protocols import TransformRegistry
from tunix_datasets.providers.files import HfProvider, JsonlProvider
from tunix_datasets.transforms import gsm8k, register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

TAGGED = "<reasoning>def f():\n    return 1</reasoning><answer> 1 </answer>"


def _write(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _load(path: Path, **options: Any) -> list[ReasoningExample]:
    return JsonlProvider().load("train", argument=str(path), seed=0, transforms=TRANSFORMS, options=options)


def _chat(*turns: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": text} for role, text in turns], **extra}


def test_chat_records_with_a_tagged_reply(tmp_path: Path) -> None:
    path = _write(tmp_path / "chat.jsonl", [
        _chat(("system", "Be terse."), ("user", "What does f return?"), ("assistant", TAGGED)),
        _chat(("user", " Q2? "), ("assistant", TAGGED), id="mine", category="code"),
    ])  # fmt: skip
    first, second = _load(path)
    assert (first.question, first.reasoning, first.answer) == (
        "What does f return?", "def f():\n    return 1", "1"
    )
    assert (second.id, second.question, second.meta.category) == ("mine", " Q2? ", "code")


def test_a_plain_reply_is_the_answer_when_the_row_has_reasoning(tmp_path: Path) -> None:
    path = _write(tmp_path / "chat.jsonl", [
        _chat(("user", "Q?"), ("assistant", " 42 "), reasoning="  indented\nwork"),
        {"prompt": "P?", "completion": "7", "steps": ["3 + 4 = 7"]},
    ])  # fmt: skip
    chat, pair = _load(path)
    assert (chat.answer, chat.reasoning) == ("42", "  indented\nwork")
    assert (pair.question, pair.steps, pair.answer) == ("P?", ("3 + 4 = 7",), "7")


def test_prompt_completion_pairs_in_parquet(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    rows = [{"prompt": f"Q{i}?", "completion": TAGGED} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    examples = HfProvider().load("train", argument=str(path), seed=0, transforms=TRANSFORMS, options={})
    assert len(examples) == 3
    assert (examples[0].question, examples[0].reasoning, examples[0].answer) == (
        "Q0?", "def f():\n    return 1", "1"
    )


def test_explicit_shape_and_columns_win_over_detection(tmp_path: Path) -> None:
    # "prompt"/"completion" columns of a columns-shaped file, mapped explicitly.
    path = _write(tmp_path / "cols.jsonl", [{"prompt": "Q?", "completion": "1", "why": "w"}])
    mapped = _load(path, columns={"question": "prompt", "answer": "completion", "steps": "why"})
    assert (mapped[0].question, mapped[0].steps) == ("Q?", ("w",))
    with pytest.raises(DataError, match=r"cols\.jsonl:1: field 'question': is required"):
        _load(path, shape="columns")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_chat(("user", "Q?")), r":1: field 'messages': has no assistant turn \(expected an "
                                r"optional system turn, then one user turn and one assistant"),
        (_chat(("user", "Q?"), ("assistant", "A"), ("user", "more?")),
         r":1: field 'messages': expected .*; got roles: user, assistant, user"),
        (_chat(("assistant", TAGGED)), r"got roles: assistant$"),
        ({"messages": "hi"}, r"field 'messages': must be a list of turns, got str"),
        (_chat(("user", "Q?"), ("assistant", "<answer>1</answer>")),
         r"field 'messages\[1\].content': has <reasoning>/<answer> tags but not as one"),
        (_chat(("user", "Q?"), ("assistant", "42")),
         r"field 'messages\[1\].content': has no <reasoning>.*no reasoning or steps column"),
        ({"prompt": "Q?", "completion": 3}, r"field 'completion': must be a string, got int"),
        ({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": TAGGED}]},
         r"field 'messages\[0\].content': must be a string"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, row: Any, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [row])
    with pytest.raises(DataError, match=rf"bad\.jsonl{message}" if message[0] == ":" else message):
        _load(path)


def test_gsm8k_transform_splits_the_answer_and_drops_calculator_notes(tmp_path: Path) -> None:
    row = {
        "question": "Natalia sold clips to 48 friends in April, and half as many in May...",
        "answer": "In May she sold 48/2 = <<48/2=24>>24 clips.\n"
                  "Altogether 48+24 = <<48+24=72>>72 clips.\n#### 72",
    }  # fmt: skip
    assert gsm8k(row) == {
        "question": row["question"],
        "reasoning": "In May she sold 48/2 = 24 clips.\nAltogether 48+24 = 72 clips.",
        "answer": "72",
    }
    path = _write(tmp_path / "gsm8k.jsonl", [row])
    (example,) = _load(path, transform="gsm8k")
    assert (example.answer, example.reasoning) == ("72", gsm8k(row)["reasoning"])


def test_gsm8k_rows_without_a_final_answer_name_the_line(tmp_path: Path) -> None:
    good = {"question": "Q?", "answer": "1 + 1 = 2\n#### 2"}
    path = _write(tmp_path / "gsm8k.jsonl", [good, {"question": "Q?", "answer": "#### 1"}])
    with pytest.raises(DataError, match=r"gsm8k\.jsonl:2: transform 'gsm8k': field 'answer': "
                                        r"has no solution text before '####'"):  # fmt: skip
        _load(path, transform="gsm8k")
    path = _write(tmp_path / "gsm8k.jsonl", [good, good, {"question": "Q?", "answer": "3"}])
    with pytest.raises(DataError, match=r"gsm8k\.jsonl:3: .*has no '#### ANSWER' line"):
        _load(path, transform="gsm8k")


def test_an_unknown_transform_lists_the_known_ones(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", [{"question": "Q?", "answer": "1", "steps": ["s"]}])
    with pytest.raises(ConfigError, match=r"dataset\.options\.transform: Unknown transform "
                                          r"'gsm9k'\. Installed: gsm8k\b.*Did you mean 'gsm8k'"):  # fmt: skip
        _load(path, transform="gsm9k")


def test_an_unknown_shape_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.jsonl", [{"question": "Q?", "answer": "1", "steps": ["s"]}])
    with pytest.raises(ConfigError, match=r"dataset\.options\.shape: must be one of auto, "):
        _load(path, shape="chat")


def upper_answer(row: Any) -> dict[str, Any]:
    return {**row, "answer": str(row["answer"]).upper()}


@hookimpl
def tunix_register_transforms(registry: TransformRegistry) -> None:
    registry.register("upper", f"{__name__}:upper_answer", description="upper-cases answers")


def test_a_plugin_registers_a_transform_through_the_hook() -> None:
    host = PluginHost()
    host.add_plugin(plugin_module("t", tunix_register_transforms=tunix_register_transforms),
                    "t", "tunix-transform-test")  # fmt: skip
    host.fill_registries()
    assert host.transforms.load("upper")({"answer": "x"}) == {"answer": "X"}
    assert host.provides() == {"tunix-transform-test": {"transforms": ["upper"]}}
    assert host.registries()["transforms"] is host.transforms


def test_the_plugin_registers_gsm8k() -> None:
    entry = get_host().transforms.entry("gsm8k")
    assert (entry.distribution, entry.load()) == ("tunix-datasets", gsm8k)
