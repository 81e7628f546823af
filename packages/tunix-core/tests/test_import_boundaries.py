"""The core, the evaluators and the packager reach models only through a model backend:
none of their modules imports ``tunix_jax``, at the top or inside a function. Read as
source, so it holds without installing any of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
JAX_FREE = {
    "tunix_core": REPO / "packages/tunix-core/src/tunix_core",
    "tunix_eval": REPO / "packages/tunix-eval/src/tunix_eval",
    "tunix_package": REPO / "packages/tunix-package/src/tunix_package",
}
FORBIDDEN = ("tunix_jax", "jax", "flax", "optax", "orbax")


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement in ``source`` names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_scan_sees_imports_inside_functions():
    source = "def f():\n    from tunix_jax.export import verify\n    import jax.numpy\n"
    assert imported_modules(source) == {"tunix_jax.export", "jax.numpy"}


@pytest.mark.parametrize("package", sorted(JAX_FREE))
def test_package_imports_no_jax(package: str):
    files = sorted(JAX_FREE[package].rglob("*.py"))
    assert files, JAX_FREE[package]
    offending = [
        f"{path.relative_to(REPO)}: {module}"
        for path in files
        for module in sorted(imported_modules(path.read_text(encoding="utf-8")))
        if module.split(".")[0] in FORBIDDEN
    ]
    assert offending == []
