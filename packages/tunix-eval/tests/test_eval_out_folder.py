"""``tunix eval --out`` never overwrites its own input, nor an evaluation of something else
unless ``--fresh`` says so."""

from __future__ import annotations

import json
from pathlib import Path

from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS

GOOD = "<reasoning>r</reasoning><answer>{}</answer>"


def write_completions(path: Path, *answers: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [{"id": f"q{i}", "completion": GOOD.format(a), "expected": "1", "mine": "keep me"}
               for i, a in enumerate(answers)]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def last_line(result) -> str:
    return result.stderr.splitlines()[-1]


def test_scoring_into_the_folder_of_the_input_file_is_refused(invoke, tmp_path):
    folder = tmp_path / "scored"
    source = write_completions(folder / PREDICTIONS, "1", "2")
    before = source.read_bytes()
    result = invoke("eval", "--predictions", source, "--out", folder)
    assert result.exit_code == 2
    assert last_line(result) == (
        f"Error: --out {folder} would overwrite the input {source} with its own scores; "
        "choose another --out"
    )
    assert source.read_bytes() == before and not (folder / EVAL_SUMMARY).exists()
    # --fresh does not make it safe, and a path spelled differently is the same file
    spelled = tmp_path / "scored" / ".." / "scored"
    again = invoke("eval", "--predictions", source, "--out", spelled, "--fresh")
    assert again.exit_code == 2 and "would overwrite the input" in last_line(again)
    assert source.read_bytes() == before


def test_an_evaluation_of_another_file_is_kept_unless_fresh(invoke, tmp_path):
    out = tmp_path / "scored"
    first = write_completions(tmp_path / "first.jsonl", "1", "1")
    second = write_completions(tmp_path / "second.jsonl", "2", "2")
    assert invoke("eval", "--predictions", first, "--out", out).exit_code == 0
    kept = (out / EVAL_SUMMARY).read_bytes()

    refused = invoke("eval", "--predictions", second, "--out", out)
    assert refused.exit_code == 2
    assert last_line(refused) == (
        f"Error: --out {out} already holds an evaluation of predictions_file {first}; "
        "add --fresh to replace it, or choose another --out"
    )
    assert (out / EVAL_SUMMARY).read_bytes() == kept

    replaced = invoke("eval", "--predictions", second, "--out", out, "--fresh")
    assert replaced.exit_code == 0, replaced.output
    summary = json.loads((out / EVAL_SUMMARY).read_text())
    assert summary["source"] == {"predictions_file": str(second)}
    assert summary["primary_score"] == 0.0


def test_rescoring_the_same_file_into_the_same_folder_is_allowed(invoke, tmp_path):
    out = tmp_path / "scored"
    source = write_completions(tmp_path / "mine.jsonl", "1", "2")
    assert invoke("eval", "--predictions", source, "--out", out).exit_code == 0
    write_completions(source, "1", "1")  # the user fixed a completion
    assert invoke("eval", "--predictions", source, "--out", out).exit_code == 0
    assert json.loads((out / EVAL_SUMMARY).read_text())["primary_score"] == 1.0


def test_a_predictions_file_no_evaluation_wrote_is_not_replaced(invoke, tmp_path):
    out = tmp_path / "scored"
    theirs = write_completions(out / PREDICTIONS, "1")
    before = theirs.read_bytes()
    source = write_completions(tmp_path / "mine.jsonl", "1")
    result = invoke("eval", "--predictions", source, "--out", out)
    assert result.exit_code == 2
    assert last_line(result) == (
        f"Error: --out {out} already holds a {PREDICTIONS} that is not part of an evaluation; "
        "add --fresh to replace it, or choose another --out"
    )
    assert theirs.read_bytes() == before
    assert invoke("eval", "--predictions", source, "--out", out, "--fresh").exit_code == 0


def test_a_model_evaluation_does_not_reuse_the_completions_of_another_model(invoke, arith, tmp_path):
    out = tmp_path / "base"
    common = ("--dataset", "arith", "--limit", "2", "--out", out)
    assert invoke("eval", "--model", "tiny-gemma3", "--weights", "random", *common).exit_code == 0
    other = invoke("eval", "--model", "other-preset", "--weights", "random", *common)
    assert other.exit_code == 2
    assert last_line(other) == (
        f"Error: --out {out} already holds an evaluation of dataset arith, "
        "model_id tiny-gemma3@random, split eval; add --fresh to replace it, or choose another --out"
    )
    # the same model again resumes (reuses its completions), as before
    again = invoke("eval", "--model", "tiny-gemma3", "--weights", "random", *common, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["generation"]["reused"] == 2
