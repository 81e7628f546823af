"""The run layout is the only place a run's file names are spelled."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tunix_core import layout
from tunix_core.layout import RunLayout, model_id
from tunix_core.rundir import RunDirectory

REPO = Path(__file__).resolve().parents[3]
SOURCE_ROOTS = [REPO / "packages" / name / "src" for name in ("tunix-core", "tunix-eval", "tunix-package")]
LAYOUT_MODULE = Path(layout.__file__).resolve()

FILE_NAMES = (
    layout.MANIFEST, layout.CONFIG, layout.LOG, layout.METRICS, layout.LOSS_CURVE,
    layout.MODEL_CONFIG, layout.TRAIN_DATA, layout.EVAL_DATA, layout.PREDICTIONS,
    layout.EVAL_SUMMARY, layout.REPORT,
)  # fmt: skip
FOLDER_NAMES = (layout.CHECKPOINTS, layout.MODEL, layout.DATA, layout.BASELINE, layout.SUBMISSION,
                layout.TENSORBOARD)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the string constants that are docstrings (prose may name files)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def layout_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string in ``source`` that spells a run file name, a run
    folder joined as a path, or a model id ``preset@weights``."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
            if any(name in text for name in FILE_NAMES) or text.startswith(
                tuple(f"{folder}/" for folder in FOLDER_NAMES)
            ):
                found.append((node.lineno, text))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            if isinstance(right, ast.Constant) and right.value in FOLDER_NAMES:
                found.append((node.lineno, f"/ {right.value!r}"))
        elif isinstance(node, ast.JoinedStr):
            parts = node.values
            for before, at, after in zip(parts, parts[1:], parts[2:], strict=False):
                if (isinstance(before, ast.FormattedValue) and isinstance(after, ast.FormattedValue)
                        and isinstance(at, ast.Constant) and at.value == "@"):  # fmt: skip
                    found.append((node.lineno, "an f-string model id {preset}@{weights}"))
    return found


def test_no_run_file_name_is_spelled_outside_the_layout_module() -> None:
    offenders = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for root in SOURCE_ROOTS
        for path in sorted(root.rglob("*.py"))
        if path.resolve() != LAYOUT_MODULE
        for line, text in layout_literals(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "use tunix_core.layout instead:\n" + "\n".join(offenders)


@pytest.mark.parametrize(
    "source",
    [
        'path = run / "eval_summary.json"',
        'REQUIRED = ("run.log", "x")',
        'path = run / "baseline"',
        'path = run / "data/train.jsonl"',
        'name = f"{preset}@{weights}"',
        'message = f"see {run}/metrics.jsonl"',
    ],
)
def test_the_guard_catches_each_way_of_spelling_a_run_file(source: str) -> None:
    assert layout_literals(source) != []


def test_the_guard_ignores_docstrings_and_unrelated_strings() -> None:
    source = '"""Writes ``eval_summary.json``."""\ndef f():\n    """And run.log."""\n    return {"model": 1}\n'
    assert layout_literals(source) == []


def test_a_run_directory_exposes_the_layout(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path, {"run_id": "r"})
    assert run.manifest_path == tmp_path / "run_manifest.json"
    assert run.summary_path == tmp_path / "eval_summary.json"
    assert run.baseline_summary_path == tmp_path / "baseline" / "eval_summary.json"
    assert run.train_data_path == tmp_path / "data" / "train.jsonl"
    assert run.model_config_path == tmp_path / "model" / "model_config.json"
    assert run.loss_curve_path == RunLayout(tmp_path).loss_curve_path == tmp_path / "loss_curve.png"


def test_model_id_joins_preset_and_weights() -> None:
    assert model_id("gemma3-270m", "default") == "gemma3-270m@default"
