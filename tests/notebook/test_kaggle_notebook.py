"""Executes notebooks/kaggle_submission.ipynb top to bottom with the tiny CPU profile
(nox session ``notebook``) and checks what it leaves in the working folder."""

from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_notebook_runs_and_leaves_bundle_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNIX_NOTEBOOK_PROFILE", "ci")
    monkeypatch.setenv("TUNIX_SRC", str(ROOT))
    monkeypatch.setenv("TUNIX_WORK", str(tmp_path))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    notebook = nbformat.read(ROOT / "notebooks" / "kaggle_submission.ipynb", as_version=4)
    NotebookClient(notebook, timeout=1200, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}
    }).execute()
    outputs = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    assert "profile=ci" in outputs
    assert "JAX " in outputs and "cpu" in outputs
    bundles = list(tmp_path.glob("*.zip"))
    assert len(bundles) == 1 and bundles[0].stat().st_size < 1_000_000
    assert (tmp_path / "model" / "model_config.json").is_file()
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for cell in notebook.cells
        for o in cell.get("outputs", [])
    ), "the loss curve was not shown"
