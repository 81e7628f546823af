"""The ``judging-mix`` evaluator on planted completions of real judging-mix items, and
``tunix eval --run RUN --dataset NAME --dtype``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tunix_core.config import structure_config, unstructure_config
from tunix_core.data.loading import load_split
from tunix_core.data.record import write_jsonl
from tunix_core.evaluation import example_meta
from tunix_core.layout import EVAL_SUMMARY
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_core.rundir import RunDirectory
from tunix_eval import judging_mix
from tunix_eval.judging_mix import NO_JUDGE_NOTE, JudgingMixEvaluator

# Through the registry: nothing outside tunix-datasets imports it.
SUITE = load_split(
    get_host().datasets, "judging-mix", "eval", seed=0, options={}, limit=None,
    transforms=get_host().transforms,
)  # fmt: skip
ITEMS = {item.id: item for item in SUITE}


def predict(item_id: str, completion: str) -> Prediction:
    item = ITEMS[item_id]
    return Prediction(item_id, f"<start_of_turn>user\n{item.question}<end_of_turn>\n",
                      completion, item.answer, example_meta(item))  # fmt: skip


def well_formed(answer: str, reasoning: str = "I worked it out.") -> str:
    return f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


PLANTED = [
    predict("jm-math-01", well_formed("22")),  # right
    predict("jm-math-02", well_formed("70")),  # wrong
    predict("jm-math-03", "84"),  # right number, no format
    predict("jm-creative-01", well_formed("A story. " * 10)),
    predict("jm-creative-02", well_formed("word " * 1100)),  # over the token limit
]


def test_per_domain_rates_with_standard_errors_and_no_judge_said_plainly() -> None:
    report = JudgingMixEvaluator(reference_free=lambda q, c: {}).evaluate(
        PLANTED, context=RunContext(get_host())
    )
    metrics = report.metrics
    math, creative = metrics["by_domain"]["math"], metrics["by_domain"]["creative_writing"]
    assert (math["n"], math["verifiable"], math["open"]) == (3, 3, 0)
    # Only the two answers in an answer block can be right; one of them is.
    assert math["answer_accuracy"]["count"] == 1 and math["answer_accuracy"]["n"] == 3
    assert math["answer_accuracy"]["stderr"] == pytest.approx((1 / 3 * 2 / 3 / 3) ** 0.5)
    assert math["strict_format"]["count"] == 2
    # Open items have no accuracy: nothing judges them without a judge model.
    assert "answer_accuracy" not in creative and creative["open"] == 2
    assert creative["over_token_limit"]["rate"] == 0.5
    assert creative["strict_format"]["count"] == 1
    assert metrics["overall"]["n"] == 5 and metrics["overall"]["over_token_limit"]["count"] == 1
    assert metrics["overall"]["answer_accuracy"]["n"] == 3
    assert metrics["judge_configured"] is False and NO_JUDGE_NOTE in metrics["notes"]
    assert report.per_item["jm-creative-02"]["over_token_limit"] is True
    assert "correct" not in report.per_item["jm-math-01"]  # accuracy's verdict, not ours


def test_reference_free_checks_plug_in_per_domain() -> None:
    def empty_reasoning(question: str, completion: str) -> dict[str, bool | None]:
        inside = completion.partition("<reasoning>")[2].partition("</reasoning>")[0]
        applies = "<reasoning>" in completion
        return {"empty_reasoning": not inside.strip() if applies else None}

    planted = [*PLANTED, predict("jm-math-04", well_formed("36", reasoning=" "))]
    metrics = (
        JudgingMixEvaluator(reference_free=empty_reasoning)
        .evaluate(planted, context=RunContext(get_host()))
        .metrics
    )
    flagged = metrics["by_domain"]["math"]["reference_free_flagged"]["empty_reasoning"]
    # jm-math-03 has no reasoning block: the check does not apply and is not counted.
    assert (flagged["count"], flagged["n"]) == (1, 3)
    assert metrics["reference_free_checks"] is True


def test_without_the_reference_free_module_the_summary_says_so(monkeypatch) -> None:
    monkeypatch.setattr(judging_mix, "REFERENCE_FREE_MODULE", "tunix_core.no_such_module")
    metrics = JudgingMixEvaluator().evaluate(PLANTED, context=RunContext(get_host())).metrics
    assert metrics["reference_free_checks"] is False
    assert any("reference-free checks did not run" in note for note in metrics["notes"])
    assert "reference_free_flagged" not in metrics["overall"]


def make_run(root: Path, examples) -> RunDirectory:
    run = RunDirectory.create(root, "r", model_id="tiny-gemma3@random", dataset="arith",
                              trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip
    config = structure_config({"dataset": {"name": "arith"}, "model": {"preset": "tiny-gemma3"}})
    run.config_path.write_text(yaml.safe_dump(unstructure_config(config)))
    write_jsonl(examples[:2], run.data_dir / "eval.jsonl")
    run.model_dir.mkdir()
    return run


def test_eval_run_on_another_dataset_in_bfloat16(invoke, arith, tmp_path) -> None:
    run = make_run(tmp_path, arith.examples("eval"))
    result = invoke("eval", "--run", run.path, "--dataset", "arith", "--dtype", "bfloat16")
    assert result.exit_code == 0, result.output
    call = arith.backend.calls[-1]
    assert call["trained"] is True and call["spec"].dtype == "bfloat16"
    summary = json.loads((run.path / "evals" / "arith" / EVAL_SUMMARY).read_text())
    # Every item of the dataset's split, not the run's two saved eval items.
    assert summary["counts"]["items"] == 6 and summary["source"]["dataset"] == "arith"
    assert not (run.path / EVAL_SUMMARY).exists()  # the run's own evaluation is untouched
    # Without --dtype the run's model.dtype stays.
    again = invoke("eval", "--run", run.path, "--dataset", "arith", "--out", tmp_path / "f32")
    assert again.exit_code == 0 and arith.backend.calls[-1]["spec"].dtype == "float32"


def test_dtype_and_dataset_do_not_go_with_predictions(invoke, tmp_path) -> None:
    result = invoke("eval", "--predictions", __file__, "--out", tmp_path, "--dtype", "bfloat16")
    assert (
        result.exit_code == 2 and "--dataset and --dtype go with --model or --run" in result.output
    )
