"""docs/configuration.md documents every field of the ``jax`` backend's ``model.options``
and of the ``jax`` and ``grpo`` trainers' ``trainer.options`` (the ``grpo`` trainer's
are the ``jax`` trainer's and more) with its real default."""

import re
from pathlib import Path

import attrs
import pytest
import yaml

from tunix_core.config import converter
from tunix_jax.options import GrpoTrainerOptions, JaxModelOptions

DOC = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
ROWS = dict(re.findall(r"^\| `([a-z_.]+)` \| (.+?) \| .+ \|$", DOC.read_text(), re.M))
SECTIONS = {"model.options": JaxModelOptions, "trainer.options": GrpoTrainerOptions}
FIELDS = [
    (f"{root}.{field.name}", field)
    for root, cls in SECTIONS.items()
    for field in attrs.fields(attrs.resolve_types(cls))
]


@pytest.mark.parametrize(("path", "field"), FIELDS, ids=[p for p, _ in FIELDS])
def test_option_is_documented_with_its_default(path, field):
    assert path in ROWS, f"docs/configuration.md has no row for `{path}`"
    default = field.default
    value = converter.unstructure(default.factory() if isinstance(default, attrs.Factory) else default)
    expected = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    expected = expected.removesuffix("...").strip()
    assert ROWS[path] == f"`{expected}`", f"{path}: documented {ROWS[path]}, default {expected}"


def test_no_documented_option_is_stale():
    documented = {path for path in ROWS if path.startswith(tuple(f"{r}." for r in SECTIONS))}
    assert documented - {path for path, _ in FIELDS} == set()
