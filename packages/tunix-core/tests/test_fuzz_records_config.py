"""Fuzzed input to the record reader and the config loader: a clean result or a
TunixError, never a traceback, and nothing written outside the folder under test."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunix_core.config import load_config
from tunix_core.data.record import read_jsonl
from tunix_core.errors import TunixError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# JSON values shaped like records: the field names a record has, values of any JSON type.
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
FIELD = st.sampled_from(["id", "question", "steps", "answer", "meta", "category", "difficulty",
                         "answer_match", "source", "x"])  # fmt: skip
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(FIELD, inner, max_size=5), max_leaves=12)  # fmt: skip
LINES = st.lists(st.one_of(VALUES.map(json.dumps), st.text(max_size=30)), max_size=4)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _only_tunix_errors(call, folder: Path) -> None:
    before = _files(folder)
    with contextlib.suppress(TunixError):
        call()
    assert _files(folder) == before


@FUZZ
@given(lines=LINES, raw=st.binary(max_size=40))
def test_the_record_reader_accepts_or_names_the_problem(lines: list[str], raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        path.write_bytes("\n".join(lines).encode() + b"\n" + raw)
        _only_tunix_errors(lambda: read_jsonl(path), Path(tmp))


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
