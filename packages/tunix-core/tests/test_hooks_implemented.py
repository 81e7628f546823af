"""Every hook in hookspecs.py has an implementation in one of the project's plugins and a
test that names it. The plugins are read as source (from the entry points their
pyproject.toml declares), so this holds without installing tunix-jax or the example."""

from __future__ import annotations

import ast
import inspect
import tomllib
from pathlib import Path

import pytest

from tunix_core import hookspecs

REPO = Path(__file__).resolve().parents[3]
PROJECTS = sorted([*REPO.glob("packages/*/pyproject.toml"), *REPO.glob("examples/*/pyproject.toml")])
HOOKS = sorted(
    name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if hasattr(fn, "tunix_spec")
)


def plugin_modules() -> list[Path]:
    """The source files of the modules registered under the entry-point group ``tunix``."""
    files = []
    for pyproject in PROJECTS:
        entry_points = tomllib.loads(pyproject.read_text())["project"].get("entry-points", {})
        for module in entry_points.get("tunix", {}).values():
            files.append(pyproject.parent / "src" / (module.replace(".", "/") + ".py"))
    return files


def implemented_hooks(source: str) -> set[str]:
    """Names of the functions in ``source`` decorated with ``hookimpl``."""
    return {
        node.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef)
        and any(
            (isinstance(d, ast.Name) and d.id == "hookimpl")
            or (isinstance(d, ast.Call) and isinstance(d.func, ast.Name) and d.func.id == "hookimpl")
            for d in node.decorator_list
        )
    }


def files_of_tests() -> list[Path]:
    this = Path(__file__).resolve()
    found = [*REPO.glob("packages/*/tests/**/*.py"), *REPO.glob("examples/*/tests/**/*.py"),
             *REPO.glob("tests/**/*.py")]  # fmt: skip
    return [path for path in found if path.resolve() != this]


def test_every_project_plugin_module_exists():
    modules = plugin_modules()
    assert len(modules) >= 5
    assert all(module.is_file() for module in modules), modules


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_implemented_by_a_project_plugin(hook):
    implementations = [m for m in plugin_modules() if hook in implemented_hooks(m.read_text())]
    assert implementations, f"no plugin of the project implements {hook}"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_named_in_a_test(hook):
    assert any(hook in path.read_text() for path in files_of_tests()), f"no test exercises {hook}"


def test_the_implementation_finder_sees_bare_and_called_markers():
    source = "@hookimpl\ndef a(): ...\n@hookimpl(tryfirst=True)\ndef b(): ...\ndef c(): ...\n"
    assert implemented_hooks(source) == {"a", "b"}
