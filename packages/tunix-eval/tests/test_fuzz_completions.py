"""Fuzzed completions files: read_completions returns predictions or raises a TunixError
that names the problem, never a traceback, and writes nothing."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunix_core.errors import TunixError
from tunix_core.plugins import get_host
from tunix_eval.commands import read_completions

# Text that may hold lone surrogates: json.dumps writes them as "\\ud800" escapes.
SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
TEXT = st.text(max_size=20) | st.text(st.characters() | SURROGATE, max_size=8)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
FIELD = st.sampled_from(["id", "completion", "expected", "prompt", "meta", "answer_match",
                         "category", "x"])  # fmt: skip
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(FIELD, inner, max_size=5), max_leaves=12)  # fmt: skip
LINES = st.lists(st.one_of(VALUES.map(json.dumps), st.text(max_size=30)), max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=LINES, raw=st.binary(max_size=40))
def test_read_completions_accepts_or_names_the_problem(lines: list[str], raw: bytes) -> None:
    checks = get_host().answer_checks
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "completions.jsonl"
        path.write_bytes("\n".join(lines).encode() + b"\n" + raw)
        try:
            predictions = read_completions(path, checks)
        except TunixError:
            pass
        else:
            assert predictions and all(isinstance(p.completion, str) for p in predictions)
        assert [p.name for p in Path(tmp).iterdir()] == ["completions.jsonl"]
