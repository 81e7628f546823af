"""Executes notebooks/kaggle_submission.ipynb top to bottom with the tiny CPU profile
(nox session ``notebook``) and checks what it leaves in the working folder and that it
ran the config ``tunix plan`` wrote; then runs it again as a second Kaggle session that
resumes the first one's run directory.

On a TPU VM the first process that initialises libtpu holds every chip, so the kernel
must not have started a JAX backend when the run begins: just before the cell tagged
``tunix-run`` the test asks the kernel itself.
"""

import os
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
RUN_TAG = "tunix-run"
PROBE = """
import sys
bridge = sys.modules.get("jax._src.xla_bridge")
print("backends initialised:", bridge is not None and bridge.backends_are_initialized())
"""


def run_notebook(work: Path, **settings: str) -> nbformat.NotebookNode:
    """The notebook executed in one kernel with the ``ci`` profile, the probe just
    before the run cell; ``settings`` are further environment variables."""
    work.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items()
           if key not in {"RESUME_FROM", "KAGGLE_MODEL_HANDLE", "TUNIX_HOURS",
                          "TUNIX_WEEKLY_HOURS", "TUNIX_USED_HOURS"}}  # fmt: skip
    env.update(TUNIX_NOTEBOOK_PROFILE="ci", TUNIX_SRC=str(ROOT), TUNIX_WORK=str(work),
               JAX_PLATFORMS="cpu", **settings)  # fmt: skip
    notebook = nbformat.read(ROOT / "notebooks" / "kaggle_submission.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=1200, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})  # fmt: skip
    probed = False
    client.reset_execution_trackers()
    with client.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            if RUN_TAG in cell.metadata.get("tags", []):
                probe = nbformat.v4.new_code_cell(PROBE)
                client.execute_cell(probe, index, store_history=False)
                said = "".join(output.get("text", "") for output in probe.outputs)
                assert said.strip() == "backends initialised: False", (
                    f"the kernel started a JAX backend before the run cell: {said!r}"
                )
                probed = True
            client.execute_cell(cell, index)
    assert probed, f"no cell is tagged {RUN_TAG!r}"
    return notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for cell in notebook.cells for o in cell.get("outputs", []))


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, nbformat.NotebookNode]:
    work = tmp_path_factory.mktemp("session1")
    return work, run_notebook(work)


def test_notebook_runs_and_leaves_bundle_and_model(first):
    work, notebook = first
    outputs = text_of(notebook)
    assert "profile=ci" in outputs
    assert "Run directory: " in outputs and "run directory: " in outputs  # the API, in the kernel
    bundles = list(work.glob("*.zip"))
    assert len(bundles) == 1 and bundles[0].stat().st_size < 1_000_000
    model = work / "model"
    assert (model / "model_config.json").is_file() and (model / "tokenizer.model").is_file()
    assert (model / "params").is_dir()
    assert any(
        o.get("output_type") == "display_data" and "image/png" in o.get("data", {})
        for cell in notebook.cells
        for o in cell.get("outputs", [])
    ), "the loss curve was not shown"
    # Printed by the run itself (tunix_jax.devices.device_line), not by a cell.
    assert "[run] devices: JAX " in outputs and " x cpu (" in outputs
    # tunix plan measured and planned 9 hours of the 20-hour week, and the run took its config.
    assert "week: 0 h of 20 h used (--used-hours not given); planning 9 h" in outputs
    assert "plan for 9 h on 1 x cpu" in outputs and "wrote " in outputs
    (run,) = (work / "runs").iterdir()
    planned = yaml.safe_load((work / "tunix-plan.yaml").read_text())["training"]
    saved = yaml.safe_load((run / "config.yaml").read_text())["training"]
    assert saved["time_budget"] == planned["time_budget"] is not None
    assert saved["checkpoint_every"] == planned["checkpoint_every"] == 3  # all 3 steps fit


def test_a_second_session_resumes_the_first_ones_run(first, tmp_path):
    (run,) = (first[0] / "runs").iterdir()
    notebook = run_notebook(tmp_path, RESUME_FROM=str(run))
    outputs = text_of(notebook)
    copied = tmp_path / "runs" / run.name
    assert f"Resuming {copied}" in outputs
    # The first session finished training: tunix plan --resume has nothing to plan.
    assert f"{copied} has finished training: nothing to plan" in outputs
    assert "[package] already done, skipping" in outputs
    assert (tmp_path / "model" / "params").is_dir() and len(list(tmp_path.glob("*.zip"))) == 1
