"""Imports of tunix's own modules sit at the top of files, so that a file's first lines
show what it depends on. One inside a function says why, on its line, on the comment line
just above it or above the run of consecutive imports it belongs to, with one of the
``REASONS`` tags: ``startup:`` (the module is imported on a path that must stay light, such
as ``tunix --help``), ``optional:`` (it needs an extra that may not be installed) or
``cycle:`` (at the top it would close an import cycle). Read as source, so it holds
without installing anything."""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
REASONS = ("startup:", "optional:", "cycle:")
IMPORT_PACKAGES = {
    path.name: path
    for pattern in ("packages/*/src/*", "examples/*/src/*")
    for path in sorted(REPO.glob(pattern))
    if (path / "__init__.py").is_file()
}
CHECKED = sorted(IMPORT_PACKAGES)


def _imports_tunix(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0].startswith("tunix_")
    return any(alias.name.split(".")[0].startswith("tunix_") for alias in node.names)


def _reasoned_lines(source: str) -> set[int]:
    """The lines that hold a comment with one of the ``REASONS``."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {token.start[0] for token in tokens
            if token.type == tokenize.COMMENT and any(tag in token.string for tag in REASONS)}  # fmt: skip


def unexplained_imports(source: str) -> list[int]:
    """The lines of the ``tunix_*`` imports inside function bodies that give no reason."""
    reasoned = _reasoned_lines(source)
    found: list[int] = []

    def check_body(body: list[ast.stmt]) -> None:
        run_start = 0  # the first line of the run of imports the statement belongs to
        previous: ast.stmt | None = None
        for statement in body:
            is_import = isinstance(statement, ast.Import | ast.ImportFrom)
            if is_import and not isinstance(previous, ast.Import | ast.ImportFrom):
                run_start = statement.lineno
            if isinstance(statement, ast.Import | ast.ImportFrom) and _imports_tunix(statement):
                own = range(statement.lineno, (statement.end_lineno or statement.lineno) + 1)
                if not reasoned.intersection([*own, statement.lineno - 1, run_start - 1]):
                    found.append(statement.lineno)
            previous = statement

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                for field in ("body", "orelse", "finalbody"):
                    block = getattr(inner, field, None)
                    if isinstance(block, list) and all(isinstance(s, ast.stmt) for s in block):
                        check_body(block)
    return sorted(set(found))


def test_the_scan_finds_unexplained_imports_in_functions():
    source = (
        "from tunix_core import errors\n"
        "import json\n"
        "def f():\n"
        "    import json\n"
        "    from tunix_core.layout import RunLayout\n"  # 5: no reason
        "    from . import sibling  # cycle: sibling imports this module\n"
        "    x = 1\n"
        "    # optional: tunix-sweep[ray]\n"
        "    import ray\n"
        "\n"
        "    from tunix_sweep.ray_backend import run_ray\n"  # 11: in the run the comment opens
        "    if True:\n"
        "        import tunix_jax  # startup: keeps --help light\n"
        "        x = 1\n"
        "        import tunix_jax.cli\n"  # 15: no reason
        "class C:\n"
        "    def m(self):\n"
        "        try:\n"
        "            from tunix_eval import (\n"  # 19: no reason
        "                runs,\n"
        "            )\n"
        "        except ImportError:\n"
        "            pass\n"
    )
    assert unexplained_imports(source) == [5, 15, 19]


def test_every_distribution_is_found():
    assert {"tunix_jax", "tunix_eval", "tunix_package", "tunix_sweep", "tunix_datasets",
            "tunix_plugin_example"} <= set(CHECKED)  # fmt: skip


@pytest.mark.parametrize("package", CHECKED)
def test_imports_of_tunix_inside_functions_say_why(package: str):
    files = sorted(IMPORT_PACKAGES[package].rglob("*.py"))
    assert files, package
    unexplained = [
        f"{path.relative_to(REPO)}:{line}"
        for path in files
        for line in unexplained_imports(path.read_text(encoding="utf-8"))
    ]
    assert not unexplained, (f"move these imports to the top, or give the reason "
                             f"({', '.join(REASONS)}):\n" + "\n".join(unexplained))  # fmt: skip
