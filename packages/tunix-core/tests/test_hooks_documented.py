"""Every hook spec is documented in docs/hooks.md with its exact signature, and prefixed."""

import inspect
import re
from pathlib import Path

import pytest

from tunix_core import hookspecs

DOC = Path(__file__).resolve().parents[3] / "docs" / "hooks.md"
SPECS = [
    (name, fn)
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "tunix_spec")
]


def test_there_are_hooks():
    assert len(SPECS) >= 8


@pytest.mark.parametrize(("name", "spec"), SPECS, ids=[n for n, _ in SPECS])
def test_hook_is_prefixed_typed_and_documented(name, spec):
    assert name.startswith("tunix_")
    assert spec.__doc__ and "Called" in spec.__doc__, "the docstring must say when it is called"
    signature = inspect.signature(spec)
    assert all(p.annotation is not inspect.Parameter.empty for p in signature.parameters.values())
    text = DOC.read_text()
    assert f"\n## {name}\n" in text, f"docs/hooks.md has no section for {name}"
    section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
    documented = re.search(rf"`{name}\((.*?)\) -> None`", section)
    assert documented, f"docs/hooks.md does not show the signature of {name}"
    assert [p.split(":")[0].strip() for p in documented.group(1).split(", ")] == list(
        signature.parameters
    )
