"""JSON Lines are split on ``\\n`` only: text holding other line breaks survives every reader."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import attrs
import pytest

from tunix_core import jsonio
from tunix_core.data.record import ExampleMeta, ReasoningExample, read_jsonl, write_jsonl
from tunix_core.errors import DataError
from tunix_core.evaluation import score_predictions
from tunix_core.evidence import validate_file
from tunix_core.jsonio import append_jsonl, read_user_jsonl, write_json_atomic, write_text_atomic
from tunix_core.layout import PREDICTIONS
from tunix_core.plugins import PluginHost
from tunix_core.protocols import AnswerOptions, AnswerVerdict, Prediction, RunContext

# Line and paragraph separators and NEL, which str.splitlines() breaks on; a carriage
# return too, where a field may hold one (a step must be one line).
SEPARATORS = "one\u2028two\u2029three\u0085four"
AWKWARD = SEPARATORS + "\rfive"


def test_a_record_with_line_separators_survives_write_and_read(tmp_path: Path):
    example = ReasoningExample(
        id="sep-1",
        question=f"What follows {AWKWARD}?",
        steps=(f"step {SEPARATORS}",),
        answer=AWKWARD,
        meta=ExampleMeta("text", "core", "easy", "test"),
    )
    path = tmp_path / "train.jsonl"
    examples = [example, attrs.evolve(example, id="sep-2")]
    write_jsonl(examples, path)
    assert read_jsonl(path) == examples
    assert [number for number, _ in read_user_jsonl(path)] == [1, 2]


def test_own_files_with_line_separators_read_back_whole(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    records = [{"step": 1, "note": AWKWARD}, {"step": 2, "note": AWKWARD}]
    append_jsonl(path, records)
    assert jsonio.read_jsonl(path) == records


def test_a_torn_last_line_is_still_dropped_and_a_bad_middle_line_named(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    good = json.dumps({"step": 1, "note": AWKWARD}, ensure_ascii=False)
    path.write_text(f"{good}\n{good}\n" + '{"step": 3, "no', encoding="utf-8")
    assert len(jsonio.read_jsonl(path)) == 2
    path.write_text(f"{good}\nnot json\n{good}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"^{path}:2: invalid JSON"):
        jsonio.read_jsonl(path)


def test_a_last_line_cut_inside_a_multibyte_character_is_dropped(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    good = json.dumps({"step": 1, "note": "é€😀"}, ensure_ascii=False).encode()
    for cut in (1, 2, 3):  # inside the 4-byte emoji, after its 1st, 2nd and 3rd byte
        torn = '{"step": 2, "note": "😀'.encode()[: -4 + cut]
        path.write_bytes(good + b"\n" + torn)
        assert jsonio.read_jsonl(path) == [{"step": 1, "note": "é€😀"}]


def test_bytes_that_are_not_utf8_in_a_middle_line_are_named_by_file_and_line(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n{"step": "\xc3"}\n{"step": 3}\n')
    with pytest.raises(ValueError, match=rf"^{path}:2: not UTF-8 text \(invalid continuation byte"):
        jsonio.read_jsonl(path)
    with pytest.raises(DataError, match=rf"^{path}:2: not UTF-8 text"):
        read_user_jsonl(path)  # a user's file: not even a torn last line is forgiven
    path.write_bytes(b'{"step": 1}\n{"step": "\xc3')
    with pytest.raises(DataError, match=rf"^{path}:2: not UTF-8 text"):
        read_user_jsonl(path)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (r'{"completion": "a\ud800b"}', "field 'completion'"),
        (r'{"meta": {"category": "x\udfff"}}', "field 'meta.category'"),
        (r'{"steps": ["ok", "\udc00"]}', r"field 'steps\[1\]'"),
        (r'{"meta": {"\ud83d": 1}}', r"field 'meta.\\ud83d'"),  # the key itself, escaped
        (r'"\ud800"', "the line"),
    ],
)
def test_a_lone_surrogate_is_named_by_file_line_and_field(tmp_path: Path, line: str, field: str):
    path = tmp_path / "user.jsonl"
    path.write_text('{"ok": "\\ud83d\\ude00"}\n' + line + "\n", encoding="utf-8")  # a pair is fine
    with pytest.raises(DataError, match=rf"^{path}:2: {field}: a lone surrogate") as caught:
        read_user_jsonl(path)
    str(caught.value).encode("utf-8")  # the message itself can be printed
    with pytest.raises(ValueError, match=rf"^{path}:2: {field}: a lone surrogate"):
        jsonio.read_jsonl(path)


def test_an_escaped_backslash_before_u_d800_is_plain_text(tmp_path: Path):
    path = tmp_path / "user.jsonl"
    path.write_text(r'{"a": "\\ud800"}' + "\n", encoding="utf-8")
    assert read_user_jsonl(path) == [(1, {"a": "\\ud800"})]


def test_windows_line_endings_in_a_user_file_still_read(tmp_path: Path):
    path = tmp_path / "user.jsonl"
    path.write_bytes(b'{"a": 1}\r\n\r\n{"a": 2}\r\n')
    assert read_user_jsonl(path) == [(1, {"a": 1}), (3, {"a": 2})]


def test_a_bad_user_line_is_named_by_its_newline_count(tmp_path: Path):
    path = tmp_path / "user.jsonl"
    path.write_text('{"a": "x\u2028y"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"^{path}:2: invalid JSON"):
        read_user_jsonl(path)


def same(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    return AnswerVerdict(answer.strip() == expected, "same")


def test_scored_predictions_with_line_separators_validate(tmp_path: Path):
    completion = f"<reasoning>{AWKWARD}</reasoning><answer>{AWKWARD}</answer>"
    predictions = [Prediction(f"p{i}", f"Q {AWKWARD}", completion, AWKWARD) for i in range(3)]
    host = PluginHost()
    host.answer_checks.register("auto", f"{__name__}:same")
    score_predictions(predictions, [], label="sep", out_dir=tmp_path, context=RunContext(host))
    records = jsonio.read_jsonl(tmp_path / PREDICTIONS)
    assert [r["id"] for r in records] == ["p0", "p1", "p2"]
    assert records[0]["completion"] == completion
    assert validate_file(tmp_path / PREDICTIONS) == []


def test_atomic_writes_get_the_mode_the_umask_allows(tmp_path: Path):
    old = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "summary.json", {"a": 1})
        write_text_atomic(tmp_path / "notes.txt", "hi\n")
        os.umask(0o077)
        write_text_atomic(tmp_path / "private.txt", "hi\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "summary.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "notes.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600
