"""Fuzzed input to the record reader and the config loader: a clean result or a
TunixError, never a traceback, and nothing written outside the folder under test."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunix_core import jsonio
from tunix_core.config import load_config
from tunix_core.data.record import read_jsonl
from tunix_core.errors import TunixError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that may hold lone surrogates: json.dumps writes them as "\\ud800" escapes.
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
TEXT = st.text(max_size=20) | st.text(st.characters() | SURROGATE, max_size=8)
# JSON values shaped like records: the field names a record has, values of any JSON type.
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
FIELD = st.sampled_from(["id", "question", "steps", "answer", "meta", "category", "difficulty",
                         "answer_match", "source", "x", "\ud800"])  # fmt: skip
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(FIELD, inner, max_size=5), max_leaves=12)  # fmt: skip
LINES = st.lists(st.one_of(VALUES.map(json.dumps), st.text(max_size=30)), max_size=4)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _only_tunix_errors(call, folder: Path) -> None:
    before = _files(folder)
    try:
        call()
    except TunixError as exc:
        str(exc).encode("utf-8")  # the message can be printed: no lone surrogate in it
    assert _files(folder) == before


@FUZZ
@given(lines=LINES, raw=st.binary(max_size=40))
def test_the_record_reader_accepts_or_names_the_problem(lines: list[str], raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        path.write_bytes("\n".join(lines).encode() + b"\n" + raw)
        _only_tunix_errors(lambda: read_jsonl(path), Path(tmp))


@FUZZ
@given(records=st.lists(st.dictionaries(st.text(max_size=4), st.text(max_size=12), max_size=3),
                        min_size=1, max_size=4), cut=st.integers(min_value=0))  # fmt: skip
def test_an_own_file_cut_anywhere_in_its_last_line_reads_back_the_lines_before(
    records: list[dict[str, str]], cut: int
) -> None:
    """An append interrupted at any byte of the last line, inside a multibyte character
    too: the reader returns exactly the records before it (the documented torn-line rule)."""
    data = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
    last_line_start = data.rfind(b"\n", 0, len(data) - 1) + 1
    end = last_line_start + cut % (len(data) - 1 - last_line_start)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictions.jsonl"
        path.write_bytes(data[:end])
        assert jsonio.read_jsonl(path) == records[:-1]


YAML_KEYS = st.sampled_from(["run", "dataset", "model", "training", "eval", "package", "trainer",
                             "name", "steps", "preset", "limit", "options", "x"])  # fmt: skip
YAML_DATA = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                         | st.dictionaries(YAML_KEYS, inner, max_size=4), max_leaves=12)  # fmt: skip


@FUZZ
@given(data=YAML_DATA, noise=st.text(max_size=30), raw=st.binary(max_size=10))
def test_the_config_loader_accepts_or_names_the_problem(data: object, noise: str, raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_bytes(json.dumps(data).encode() + b"\n" + noise.encode() + raw)
        _only_tunix_errors(lambda: load_config(path), Path(tmp))
