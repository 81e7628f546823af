"""The models layer imports no training code: no module under ``tunix_jax/models``
imports the training loop, the trainers or the export, at the top or inside a function.
Read as source, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import tunix_jax

MODELS = Path(tunix_jax.__file__).parent / "models"
FORBIDDEN = ("tunix_jax.training", "tunix_jax.sft", "tunix_jax.rl", "tunix_jax.export")


def imported_modules(source: str) -> set[str]:
    """Every module an import statement in ``source`` may bring in: ``import a.b`` names
    ``a.b``; ``from a import b`` names ``a`` and ``a.b`` (``b`` may be a submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def forbidden(module: str) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in FORBIDDEN)


def test_the_scan_sees_every_form_of_import():
    source = (
        "from tunix_jax import training\n"
        "def f():\n"
        "    from tunix_jax.rl.grpo import trainer\n"
        "    import tunix_jax.export.writing\n"
    )
    assert sorted(m for m in imported_modules(source) if forbidden(m)) == [
        "tunix_jax.export.writing", "tunix_jax.rl.grpo", "tunix_jax.rl.grpo.trainer",
        "tunix_jax.training",
    ]  # fmt: skip
    assert not forbidden("tunix_jax.trainingdata")


def test_models_import_no_training_code():
    files = sorted(MODELS.rglob("*.py"))
    assert files, MODELS
    offending = [
        f"{path.relative_to(MODELS.parent)}: {module}"
        for path in files
        for module in sorted(imported_modules(path.read_text(encoding="utf-8")))
        if forbidden(module)
    ]
    assert offending == []
