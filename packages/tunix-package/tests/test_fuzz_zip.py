"""Fuzzed zips: validation returns problems (or a TunixError), never a traceback, and
extracts nothing outside its own temporary folder, which it removes."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunix_core.errors import TunixError
from tunix_core.plugins import get_host
from tunix_core.protocols import RunContext
from tunix_package.validation import validate_path

# Names built from the parts that make extraction hard: separators, dots, clashes.
PART = st.sampled_from(["a", "zz", ".", "..", "", "y", "run.log", "MANIFEST", "C:", "\\"])
NAME = st.lists(PART, min_size=1, max_size=4).map("/".join).filter(bool)  # zipfile needs a name
ENTRY = st.tuples(NAME, st.binary(max_size=64), st.booleans(), st.sampled_from([0o100644, 0o120777, 0o040755]))


@pytest.mark.filterwarnings("ignore:Duplicate name")  # a repeated entry is one of the cases
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(ENTRY, max_size=6), tail=st.binary(max_size=16))
def test_the_zip_validator_reports_problems_never_a_traceback(entries, tail) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bundle, scratch = Path(tmp) / "bundle.zip", Path(tmp) / "scratch"
        scratch.mkdir()
        with zipfile.ZipFile(bundle, "w") as archive:
            for name, data, deflate, mode in entries:
                info = zipfile.ZipInfo(name)
                info.external_attr = mode << 16
                info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
                archive.writestr(info, data)
        with bundle.open("ab") as handle:  # trailing garbage, sometimes a damaged directory
            handle.write(tail)
        saved, tempfile.tempdir = tempfile.tempdir, str(scratch)  # where validation extracts
        try:
            problems = validate_path(bundle, context=RunContext(get_host()))
        except TunixError:
            problems = ["raised"]
        finally:
            tempfile.tempdir = saved
        assert problems  # none of these is a complete bundle
        assert sorted(p.name for p in Path(tmp).iterdir()) == ["bundle.zip", "scratch"]
        assert list(scratch.iterdir()) == []
