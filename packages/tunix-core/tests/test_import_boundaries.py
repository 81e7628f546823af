"""Every distribution but tunix-jax reaches models only through a model backend: none of
their modules imports ``tunix_jax`` or JAX, at the top or inside a function. A
distribution's source imports only the tunix distributions its pyproject declares. The
datasets reach everything else only through the registries their plugin fills: nothing
outside tunix-datasets imports ``tunix_datasets``. Read as source, so it holds without
installing any of them."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
JAX_FREE = {
    "tunix_core": REPO / "packages/tunix-core/src/tunix_core",
    "tunix_eval": REPO / "packages/tunix-eval/src/tunix_eval",
    "tunix_package": REPO / "packages/tunix-package/src/tunix_package",
    "tunix_sweep": REPO / "packages/tunix-sweep/src/tunix_sweep",
    "tunix_datasets": REPO / "packages/tunix-datasets/src/tunix_datasets",
}
FORBIDDEN = ("tunix_jax", "jax", "flax", "optax", "orbax")
DATASETS = REPO / "packages/tunix-datasets"
# Every tracked Python root but tunix-datasets itself (its tests import it).
OUTSIDE_DATASETS = [
    *(path for path in sorted((REPO / "packages").iterdir()) if path != DATASETS),
    REPO / "examples", REPO / "tests", REPO / "benchmarks", REPO / "noxfile.py",
    REPO / "conftest.py",
]  # fmt: skip


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


def python_files(root: Path) -> list[Path]:
    return [root] if root.suffix == ".py" else sorted(root.rglob("*.py"))


def datasets_imports(files: list[Path]) -> list[str]:
    return [
        f"{path.relative_to(REPO)}: {module}"
        for path in files
        for module in sorted(imported_modules(path.read_text(encoding="utf-8")))
        if module.split(".")[0] == "tunix_datasets"
    ]


def test_core_imports_nothing_of_the_datasets():
    files = python_files(REPO / "packages/tunix-core/src/tunix_core")
    assert files
    assert datasets_imports(files) == []


def test_nothing_outside_tunix_datasets_imports_it():
    files = [path for root in OUTSIDE_DATASETS for path in python_files(root)]
    assert any("tunix-eval" in str(path) for path in files)
    assert datasets_imports(files) == []


def declared_tunix_imports(package_dir: Path) -> set[str]:
    """The import names of the tunix distributions ``package_dir``'s pyproject depends on
    (its own included)."""
    project = tomllib.loads((package_dir / "pyproject.toml").read_text(encoding="utf-8"))
    names = [project["project"]["name"], *project["project"]["dependencies"]]
    return {name.split(">")[0].split("=")[0].strip().replace("-", "_") for name in names
            if name.startswith("tunix-")}  # fmt: skip


@pytest.mark.parametrize("package_dir", sorted((REPO / "packages").iterdir()), ids=lambda p: p.name)
def test_package_imports_only_the_tunix_distributions_it_declares(package_dir: Path):
    allowed = declared_tunix_imports(package_dir)
    undeclared = [
        f"{path.relative_to(REPO)}: {module}"
        for path in python_files(package_dir / "src")
        for module in sorted(imported_modules(path.read_text(encoding="utf-8")))
        if module.split(".")[0].startswith("tunix_") and module.split(".")[0] not in allowed
    ]
    assert undeclared == []


def test_the_packager_does_not_depend_on_tunix_jax():
    assert "tunix_jax" not in declared_tunix_imports(REPO / "packages/tunix-package")
