"""Reading run directories for ``tunix runs list``."""

from __future__ import annotations

from tunix_core.evaluation import score_predictions
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_core.rundir import RunDirectory
from tunix_eval.runs import format_runs, list_runs, read_run


def make_run(root, name, answer=None, steps=None):
    run = RunDirectory.create(root, name, model_id="m@random", dataset="d", trainer="jax",
                              config_path=None, command=["tunix"])  # fmt: skip
    if steps is not None:
        run.finish_stage("train", 1.0, detail={"steps": steps})
    if answer is not None:
        completion = f"<reasoning>r</reasoning><answer>{answer}</answer>"
        predictions = [Prediction("q", "", completion, "1"), Prediction("p", "", completion, "2")]
        score_predictions(predictions, [], label="final", out_dir=run.path, context=RunContext(get_host()))
    return run


def test_rows_carry_steps_and_scores(tmp_path):
    make_run(tmp_path, "trained", answer="1", steps=40)
    row = read_run(tmp_path / "trained")
    assert (row.steps, row.primary_score, row.baseline_score) == (40, 0.5, None)
    assert row.format_compliance == 1.0 and row.problem == ""


def test_ties_and_unscored_runs_sort_by_id(tmp_path):
    for name in ("b", "a"):
        make_run(tmp_path, name, answer="1")
    make_run(tmp_path, "c")
    assert [r.run_id for r in list_runs(tmp_path)] == ["a", "b", "c"]
    table = format_runs(list_runs(tmp_path)).splitlines()
    assert table[1].startswith("1  a") and table[2].startswith("2  b")
    assert table[3].startswith("-  c")


def test_an_invalid_summary_makes_the_run_unreadable_not_the_listing(tmp_path):
    run = make_run(tmp_path, "bad", answer="1")
    (run.path / "eval_summary.json").write_text('{"label": 1}')
    row = read_run(run.path)
    assert row.status == "unreadable" and "eval_summary.json" in row.problem
