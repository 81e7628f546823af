"""``tunix eval`` keeps a run's evaluation the run's own, and its errors are one line."""

from __future__ import annotations

import errno
import hashlib
import json
import sys
from pathlib import Path

import pytest
import yaml

from tunix_core import cli as cli_module
from tunix_core.config import structure_config, unstructure_config
from tunix_core.data.record import write_jsonl
from tunix_core.layout import EVAL_SUMMARY
from tunix_core.plugins import get_host
from tunix_core.rundir import RunDirectory

COMPLETIONS = [{"id": "a", "completion": "<reasoning>r</reasoning><answer>1</answer>", "expected": "1"}]


def make_run(root: Path, examples) -> RunDirectory:
    """A trained run of the ``arith`` dataset, before its evaluate stage."""
    run = RunDirectory.create(root, "r1", model_id="tiny-gemma3@random", dataset="arith",
                              trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip
    config = structure_config({"dataset": {"name": "arith"}, "model": {"preset": "tiny-gemma3"}})
    run.config_path.write_text(yaml.safe_dump(unstructure_config(config)))
    write_jsonl(examples, run.eval_data_path)
    run.model_dir.mkdir()
    return run


def run_main(monkeypatch: pytest.MonkeyPatch, capsys, *args: object) -> tuple[int, str]:
    """``tunix ARGS`` through the real entry point: ``(exit code, stderr)``."""
    monkeypatch.setenv("TUNIX_NO_HUGEPAGES", "1")
    monkeypatch.setattr(sys, "argv", ["tunix", *map(str, args)])
    get_host.cache_clear()
    with pytest.raises(SystemExit) as exited:
        cli_module.main()
    return int(exited.value.code or 0), capsys.readouterr().err


@pytest.fixture
def completions(tmp_path: Path) -> Path:
    path = tmp_path / "other.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in COMPLETIONS))
    return path


def test_predictions_are_not_scored_into_a_run_directory(invoke, arith, tmp_path, completions):
    run = make_run(tmp_path, arith.examples("eval"))
    result = invoke("eval", "--predictions", completions, "--out", run.path)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: --out {run.path} is a run directory: scoring --predictions there would "
        "replace the run's own evaluation"
    )
    assert not (run.path / EVAL_SUMMARY).exists()


def test_eval_run_records_the_model_fingerprint_and_the_eval_items(invoke, arith, tmp_path):
    run = make_run(tmp_path, arith.examples("eval"))
    run.manifest["model_fingerprint"] = "f" * 64
    run.save()
    assert invoke("eval", "--run", run.path).exit_code == 0
    source = json.loads((run.path / EVAL_SUMMARY).read_text())["source"]
    eval_sha256 = hashlib.sha256(RunDirectory.open(run.path).eval_data_path.read_bytes()).hexdigest()
    assert (source["run"], source["model_fingerprint"], source["dataset_sha256"]) == (
        "r1", "f" * 64, eval_sha256)  # fmt: skip


def test_an_out_folder_that_cannot_be_created_is_one_line(monkeypatch, capsys, tmp_path, completions):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = run_main(monkeypatch, capsys, "eval", "--predictions", completions,
                         "--out", blocker / "scored")  # fmt: skip
    assert (code, err.splitlines()[-1]) == (1, f"Error: {blocker / 'scored'}: Not a directory")
    assert err.count("Traceback") == 0


def test_a_full_disk_while_writing_the_evaluation_is_one_line(monkeypatch, capsys, tmp_path, completions):
    def disk_full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("tunix_core.evaluation.write_text_atomic", disk_full)
    out = tmp_path / "scored"
    code, err = run_main(monkeypatch, capsys, "eval", "--predictions", completions, "--out", out)
    assert (code, err.splitlines()[-1]) == (
        1, f"Error: {out / 'predictions.jsonl'}: No space left on device")  # fmt: skip
    assert err.count("Traceback") == 0
