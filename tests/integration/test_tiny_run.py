"""`tunix run` end to end on a tiny random Gemma, interrupted after a stage and resumed."""

import json
import subprocess
import sys
from pathlib import Path

TINY = [
    "--trainer", "jax", "--dataset", "dev-reasoning-v2", "--model", "tiny-gemma3",
    "--weights", "random", "--steps", "2",
    "--set", "dataset.train_limit=8", "--set", "dataset.eval_limit=4",
    "--set", "eval.max_new_tokens=8", "--set", "training.max_seq_len=512",
    "--set", "training.batch_size=2", "--set", "training.checkpoint_every=1",
]  # fmt: skip


def tunix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunix_core", *args],
        cwd=cwd, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_interrupted_run_resumes_to_a_valid_submission(tmp_path: Path):
    first = tunix(tmp_path, "run", *TINY, "--stop-after", "baseline")
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    assert manifest["stages"]["baseline"]["status"] == "done"
    assert manifest["stages"]["train"]["status"] == "pending"

    resumed = tunix(tmp_path, "run", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "[baseline] already done, skipping" in resumed.stdout
    manifest = json.loads((run / "run_manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    assert all(s["status"] == "done" for s in manifest["stages"].values())
    assert manifest["model_fingerprint"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    summary = json.loads((run / "eval_summary.json").read_text())
    assert isinstance(summary["primary_score"], float | int)
    assert "answer_accuracy" in resumed.stdout and "bundle:" in resumed.stdout

    checked = tunix(tmp_path, "validate", str(run))
    assert checked.returncode == 0, checked.stderr
    (bundle,) = (run / "submission").glob("*.zip")
    assert tunix(tmp_path, "validate", str(bundle)).returncode == 0


def test_bad_trainer_name_creates_no_run_directory(tmp_path: Path):
    result = tunix(tmp_path, "run", "--trainer", "nope", "--dataset", "dev-reasoning-v2")
    assert result.returncode == 2
    assert "Unknown trainer 'nope'. Installed: jax." in result.stderr
    assert not (tmp_path / "runs").exists()
