"""docs/configuration.md documents every config field with its real default."""

import re
from pathlib import Path

import attrs
import pytest
import yaml

from tunix_core.config import RunConfig, converter

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
ROWS = dict(re.findall(r"^\| `([a-z_.]+)` \| (.+?) \| .+ \|$", DOC.read_text(), re.M))


def _fields(cls: type, prefix: str):
    for field in attrs.fields(attrs.resolve_types(cls)):
        path = f"{prefix}{field.name}"
        if prefix:
            yield path, field
        if attrs.has(field.type):
            yield from _fields(field.type, f"{path}.")


FIELDS = list(_fields(RunConfig, ""))


@pytest.mark.parametrize(("path", "field"), FIELDS, ids=[p for p, _ in FIELDS])
def test_field_is_documented_with_its_default(path, field):
    assert path in ROWS, f"docs/configuration.md has no row for `{path}`"
    documented = ROWS[path]
    if attrs.has(field.type) or path == "dataset.system_prompt":
        return  # described in prose or in a sub-table
    default = field.default.factory() if isinstance(field.default, attrs.Factory) else field.default
    value = converter.unstructure(default)
    expected = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    expected = expected.removesuffix("...").strip()
    assert documented == f"`{expected}`", f"{path}: documented {documented}, default {expected}"


# ``options`` mappings are structured by a plugin; the plugin's tests check their rows.
PLUGIN_OWNED = tuple(f"{path}." for path, field in FIELDS if path.endswith(".options"))


def test_no_documented_field_is_stale():
    known = {path for path, _ in FIELDS}
    core_rows = {path for path in ROWS if not path.startswith(PLUGIN_OWNED)}
    assert core_rows - known == set()
