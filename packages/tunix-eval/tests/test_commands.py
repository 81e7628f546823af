"""``tunix eval``, ``tunix compare`` and ``tunix runs list`` through click's test runner."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from tunix_core.config import structure_config, unstructure_config
from tunix_core.data.record import write_jsonl
from tunix_core.errors import DataError
from tunix_core.evaluation import answer_checks_of, evaluate_examples
from tunix_core.evidence import validate_file
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS
from tunix_core.plugins import get_host
from tunix_core.protocols import RunContext
from tunix_core.rundir import RunDirectory
from tunix_eval.accuracy import AccuracyEvaluator
from tunix_eval.commands import read_completions
from tunix_eval.format import FormatEvaluator

GOOD = "<reasoning>r</reasoning><answer>{}</answer>"


def write_lines(path: Path, records) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_eval_predictions_scores_a_file_without_a_model(invoke, tmp_path):
    source = write_lines(tmp_path / "mine.jsonl", [
        {"id": "a", "completion": GOOD.format("1,000"), "expected": 1000,
         "meta": {"category": "big"}},
        {"id": "b", "completion": "no tags", "expected": "4", "prompt": "What is 2+2?"},
        {"id": "c", "completion": GOOD.format("Ja"), "expected": "ja"},
    ])  # fmt: skip
    out = tmp_path / "scored"
    result = invoke("eval", "--predictions", source, "--out", out)
    assert result.exit_code == 0, result.output
    assert "answer accuracy (primary score)  66.7%" in result.stdout
    assert validate_file(out / PREDICTIONS) == []
    assert validate_file(out / EVAL_SUMMARY) == []
    summary = json.loads((out / EVAL_SUMMARY).read_text())
    assert summary["label"] == "mine"
    assert summary["generation"] is None
    assert summary["source"] == {"predictions_file": str(source)}
    assert set(summary["evaluators"]) == {"format", "accuracy", "trace"}
    assert summary["decided_by"] == {"extracted_answer": "accuracy", "correct": "accuracy",
                                     "format_ok": "format"}  # fmt: skip
    records = [json.loads(line) for line in (out / PREDICTIONS).read_text().splitlines()]
    assert records[0]["meta"]["category"] == "big" and records[1]["meta"]["category"] == "unknown"
    assert records[1]["prompt"] == "What is 2+2?"
    assert set(records[0]["scores"]) == {"format", "accuracy", "trace"}


def test_eval_predictions_bad_lines_name_file_line_and_field(invoke, tmp_path):
    cases = [
        ({"id": "a", "completion": "x"}, "field 'expected': is required"),
        ({"id": "", "completion": "x", "expected": "1"}, "field 'id': must be a non-empty string"),
        ({"id": "a", "completion": 5, "expected": "1"}, "field 'completion': must be a string"),
        ({"id": "a", "completion": "x", "expected": [1]}, "field 'expected': must be a string or"),
        ({"id": "a", "completion": "x", "expected": "1", "meta": []}, "field 'meta': must be an"),
        ({"id": "a", "completion": "x", "expected": "1", "meta": {"k": {}}}, "field 'meta.k'"),
        ("[1, 2]", "expected a JSON object"),
        ("{oops", "invalid JSON"),
    ]
    for record, message in cases:
        path = write_lines(tmp_path / "bad.jsonl", [{"id": "ok", "completion": "", "expected": "1"},
                                                    record])  # fmt: skip
        result = invoke("eval", "--predictions", path, "--out", tmp_path / "o")
        assert result.exit_code == 1, record
        assert f"Error: {path}:2: " in result.stderr and message in result.stderr, result.stderr
    duplicate = write_lines(
        tmp_path / "dup.jsonl", [{"id": "a", "completion": "", "expected": "1"}] * 2
    )
    result = invoke("eval", "--predictions", duplicate, "--out", tmp_path / "o")
    assert "dup.jsonl:2: field 'id': 'a' already used on line 1" in result.stderr


def test_eval_predictions_with_a_lone_surrogate_names_the_field_and_writes_nothing(
    invoke, tmp_path
):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"id": "a", "completion": "x", "expected": "1"}\n'
                    '{"id": "b", "completion": "<answer>4\\ud800</answer>", "expected": "4"}\n')  # fmt: skip
    out = tmp_path / "scored"
    result = invoke("eval", "--predictions", path, "--out", out)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {path}:2: field 'completion': a lone surrogate (a \\ud800-\\udfff escape "
        "without its pair) is not text"
    ]
    assert not out.exists()


# An escape code click does not strip (a window title ending in BEL), backspaces, a bare
# carriage return and a right-to-left override.
HOSTILE = "\x1b]0;owned\x07\x08\x08\rRED\u202e"
SHOWN = "\\x1b]0;owned\\x07\\x08\\x08\\rRED\\u202e"
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\u202e]")


def test_eval_and_compare_print_control_characters_in_data_as_escapes(invoke, tmp_path):
    folders = []
    for name, answer in (("before", "5"), ("after", "4")):
        path = write_lines(tmp_path / f"{name}.jsonl", [
            {"id": f"q{HOSTILE}", "completion": GOOD.format(answer), "expected": "4",
             "meta": {"category": f"cat{HOSTILE}"}},
            {"id": "plain", "completion": GOOD.format("1"), "expected": "1",
             "meta": {"category": "other"}},
        ])  # fmt: skip
        result = invoke("eval", "--predictions", path, "--out", tmp_path / name,
                        "--label", f"{name}{HOSTILE}")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"Evaluation '{name}{SHOWN}'" in result.stdout
        assert f"cat{SHOWN}" in result.stdout and not CONTROL.search(result.stdout)
        folders.append(tmp_path / name)
    result = invoke("compare", *folders)
    assert result.exit_code == 0, result.output
    assert f"category: cat{SHOWN}" in result.stdout and f"fixed  q{SHOWN}" in result.stdout
    assert not CONTROL.search(result.stdout)


def test_read_completions_refuses_an_empty_file(host, tmp_path):
    empty = write_lines(tmp_path / "e.jsonl", ["", "  "])
    with pytest.raises(DataError, match="no completions"):
        read_completions(empty, answer_checks_of(host))


def test_eval_predictions_honours_meta_answer_match(invoke, tmp_path):
    source = write_lines(tmp_path / "cased.jsonl", [
        {"id": "upper", "completion": GOOD.format("cup quartz ant"), "expected": "CUP QUARTZ ANT",
         "meta": {"category": "case_change", "answer_match": "exact"}},
        {"id": "title", "completion": GOOD.format("Hat Wet Log"), "expected": "Hat Wet Log",
         "meta": {"category": "case_change", "answer_match": "exact"}},
        {"id": "folded", "completion": GOOD.format("cup quartz ant"), "expected": "CUP QUARTZ ANT"},
        {"id": "syllogism", "completion": GOOD.format("no fish can walk"), "expected": "no"},
    ])  # fmt: skip
    out = tmp_path / "scored"
    result = invoke("eval", "--predictions", source, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    records = {
        r["id"]: r for r in map(json.loads, (out / PREDICTIONS).read_text().splitlines())
    }
    assert {i: r["correct"] for i, r in records.items()} == {
        "upper": False, "title": True, "folded": True, "syllogism": False,
    }  # fmt: skip
    assert records["upper"]["meta"]["answer_match"] == "exact"
    assert records["upper"]["scores"]["accuracy"]["rule"] == "exact"
    summary = json.loads(result.stdout)
    assert summary["counts"]["correct"] == summary["evaluators"]["accuracy"]["correct"] == 2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("exakt", "field 'meta.answer_match': Unknown answer check 'exakt'. Installed: auto, "
                  "casefold, exact, list, number, yes_no. Did you mean 'exact'?"),
        (3, "field 'meta.answer_match': must be the name of an answer check"),
    ],
)  # fmt: skip
def test_eval_predictions_refuses_an_unknown_answer_check(invoke, tmp_path, value, message):
    path = write_lines(tmp_path / "typo.jsonl", [
        {"id": "ok", "completion": "", "expected": "1"},
        {"id": "a", "completion": "", "expected": "X", "meta": {"answer_match": value}},
    ])  # fmt: skip
    result = invoke("eval", "--predictions", path, "--out", tmp_path / "o")
    assert result.exit_code == 1
    assert f"Error: {path}:2: {message}" in result.stderr, result.stderr


def test_eval_model_loads_the_untrained_model_through_the_backend(invoke, arith, tmp_path):
    out = tmp_path / "base"
    result = invoke("eval", "--model", "tiny-gemma3", "--weights", "random", "--dataset", "arith",
                    "--limit", "4", "--out", out, "--batch-size", "3",
                    "--set", "model.dtype=bfloat16")  # fmt: skip
    assert result.exit_code == 0, result.output
    validate, load = arith.backend.calls
    spec = load["spec"]
    assert validate["validate"] == spec and load["trained"] is False
    assert (spec.preset, spec.weights, spec.dtype) == ("tiny-gemma3", "random", "bfloat16")
    summary = json.loads((out / EVAL_SUMMARY).read_text())
    assert summary["counts"]["items"] == 4
    assert summary["label"] == "tiny-gemma3@random"
    assert summary["source"] == {
        "model_id": "tiny-gemma3@random",
        "dataset": "arith",
        "split": "eval",
    }
    # untrained: sums of 10 and more are wrong, and nothing is in the exact format
    assert summary["primary_score"] == 0.5 and summary["scorecard"]["overall"]["format_ok"] == 0
    assert summary["generation"]["batch_size"] == 3
    assert "generated 4/4" in result.stderr


def test_eval_model_with_the_judge(invoke, arith, tmp_path):
    result = invoke("eval", "--model", "m", "--dataset", "arith", "--out", tmp_path / "j",
                    "--evaluator", "accuracy", "--judge-model", "judge-preset",
                    "--judge-backend", "jax", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert list(summary["evaluators"]) == ["accuracy", "judge"]
    judge = summary["evaluators"]["judge"]
    assert judge["model"] == "judge-preset@default via jax"
    assert judge["agreement_with_accuracy"] == 1.0 and judge["scored"] == 6
    assert arith.backend.calls[-1]["spec"].preset == "judge-preset"


def test_eval_usage_errors(invoke, tmp_path):
    assert invoke("eval").exit_code == 2
    both = invoke("eval", "--model", "m", "--predictions", __file__, "--out", tmp_path)
    assert both.exit_code == 2 and "exactly one of" in both.output
    assert "--model needs --dataset" in invoke("eval", "--model", "m", "--out", tmp_path).output
    assert "needs --out" in invoke("eval", "--model", "m", "--dataset", "arith").output
    unknown = invoke("eval", "--model", "m", "--dataset", "arith", "--out", tmp_path,
                     "--evaluator", "acuracy")  # fmt: skip
    assert unknown.exit_code == 2 and "Did you mean 'accuracy'?" in unknown.stderr


def make_run(
    root: Path, name: str, examples, *, trained_model: bool = True, eval_limit: int | None = None
) -> RunDirectory:
    """A run directory as `tunix run` leaves it before its evaluate stage."""
    run = RunDirectory.create(root, name, model_id="tiny-gemma3@random", dataset="arith",
                              trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip
    config = structure_config({"dataset": {"name": "arith"}, "model": {"preset": "tiny-gemma3"},
                               "eval": {"limit": eval_limit}})  # fmt: skip
    run.config_path.write_text(yaml.safe_dump(unstructure_config(config)))
    write_jsonl(examples, run.data_dir / "eval.jsonl")
    if trained_model:
        run.model_dir.mkdir()
    return run


def evaluate_into(arith, folder: Path, trained: bool, label: str) -> dict:
    return evaluate_examples(arith.model(trained), arith.examples("eval"),
                             [FormatEvaluator(), AccuracyEvaluator()], system_prompt="s",
                             max_new_tokens=16, batch_size=4, out_dir=folder, label=label, context=RunContext(get_host()))  # fmt: skip


def test_eval_run_generates_with_the_trained_model_into_the_run(invoke, arith, tmp_path):
    run = make_run(tmp_path, "r1", arith.examples("eval"))
    result = invoke("eval", "--run", run.path)
    assert result.exit_code == 0, result.output
    call = arith.backend.calls[-1]
    assert call["trained"] is True and call["directory"] == run.model_dir
    summary = json.loads((run.path / EVAL_SUMMARY).read_text())
    assert summary["label"] == "final" and summary["source"]["run"] == "r1"
    assert summary["primary_score"] == 5 / 6
    assert validate_file(run.path / PREDICTIONS) == []

    # A second call reuses the completions; --fresh generates them again.
    again = invoke("eval", "--run", run.path)
    assert "reusing 6 completion(s)" in again.stderr and "generated" not in again.stderr
    fresh = invoke("eval", "--run", run.path, "--fresh", "--out", tmp_path / "elsewhere")
    assert "generated 6/6" in fresh.stderr
    assert (tmp_path / "elsewhere" / EVAL_SUMMARY).is_file()


def test_eval_run_keeps_to_the_runs_eval_limit(invoke, arith, tmp_path):
    run = make_run(tmp_path, "limited", arith.examples("eval"), eval_limit=2)
    assert invoke("eval", "--run", run.path).exit_code == 0
    assert json.loads((run.path / EVAL_SUMMARY).read_text())["counts"]["items"] == 2


def test_eval_run_without_a_trained_model(invoke, arith, tmp_path):
    run = make_run(tmp_path, "r2", arith.examples("eval"), trained_model=False)
    result = invoke("eval", "--run", run.path)
    assert result.exit_code == 1 and "no trained model yet" in result.stderr


def test_compare_a_runs_baseline_with_its_final_evaluation(invoke, arith, tmp_path):
    run = make_run(tmp_path, "r3", arith.examples("eval"))
    evaluate_into(arith, run.baseline_dir, trained=False, label="baseline")
    evaluate_into(arith, run.path, trained=True, label="final")
    result = invoke("compare", run.path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "answer_accuracy" in out and "50.0%" in out and "83.3%" in out and "+33.3 pt" in out
    assert "format_compliance" in out and "+100.0 pt" in out
    assert "6 item(s) in both: 3 fixed (wrong -> correct), 1 broken (correct -> wrong)" in out
    assert "broken u4  expected '4': '4' -> '5'" in out
    assert "category: large" in out

    as_json = json.loads(invoke("compare", run.baseline_dir, run.path, "--json").stdout)
    assert [f["id"] for f in as_json["fixed"]] == ["u2", "u3", "u5"]
    assert as_json["metrics"][0] == {"metric": "answer_accuracy", "before": 0.5,
                                     "after": 5 / 6, "change": 5 / 6 - 0.5}  # fmt: skip


def test_compare_errors(invoke, arith, tmp_path):
    run = make_run(tmp_path, "r4", arith.examples("eval"))
    no_baseline = invoke("compare", run.path)
    assert no_baseline.exit_code == 1 and "no baseline evaluation" in no_baseline.stderr
    evaluate_into(arith, run.baseline_dir, trained=False, label="baseline")
    unfinished = invoke("compare", run.baseline_dir, run.path)
    assert "no final evaluation yet" in unfinished.stderr
    plain = invoke("compare", run.baseline_dir)
    assert "give two evaluations" in plain.stderr


def test_runs_list_ranks_by_primary_score(invoke, arith, tmp_path):
    good, weak, pending = (make_run(tmp_path, name, arith.examples("eval"))
                           for name in ("good", "weak", "pending"))  # fmt: skip
    evaluate_into(arith, good.path, trained=True, label="final")
    evaluate_into(arith, weak.baseline_dir, trained=False, label="baseline")
    evaluate_into(arith, weak.path, trained=False, label="final")
    (tmp_path / "not-a-run").mkdir()
    result = invoke("runs", "list", "--dir", tmp_path)
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()
    assert rows[0].split() == ["#", "run", "status", "score", "baseline", "format", "dataset",
                               "model", "steps"]  # fmt: skip
    assert rows[1].split()[:6] == ["1", "good", "created", "83.3%", "-", "100.0%"]
    assert rows[2].split()[:6] == ["2", "weak", "created", "50.0%", "50.0%", "0.0%"]
    assert rows[3].split()[:4] == ["-", "pending", "created", "-"]
    assert len(rows) == 4
    records = json.loads(invoke("runs", "list", "--dir", tmp_path, "--json").stdout)
    assert [r["run_id"] for r in records] == ["good", "weak", "pending"]
    assert records[0]["dataset"] == "arith" and records[0]["steps"] is None
    assert pending.path.name == "pending"


def test_runs_list_reports_an_unreadable_run(invoke, arith, tmp_path):
    make_run(tmp_path, "fine", arith.examples("eval"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run_manifest.json").write_text("{not json")
    result = invoke("runs", "list", "--dir", tmp_path)
    assert "broken  unreadable" in result.stdout and "invalid JSON" in result.stdout
    assert invoke("runs", "list", "--dir", tmp_path / "missing").exit_code == 1


def test_eval_run_into_a_run_in_use_is_refused_but_into_another_folder_it_goes_ahead(
    invoke, arith, tmp_path
):
    from tunix_core.rundir import run_lock

    run = make_run(tmp_path, "busy", arith.examples("eval"))
    with run_lock(run, "tunix run"):  # as a live run would: another open file is refused
        refused = invoke("eval", "--run", run.path)
        elsewhere = invoke("eval", "--run", run.path, "--out", tmp_path / "elsewhere")
    assert refused.exit_code == 1
    assert refused.stderr.strip() == (
        f"Error: {run.path} is in use by pid {os.getpid()} (tunix run); wait for it to end or stop it"
    )
    assert not (run.path / PREDICTIONS).exists()
    assert elsewhere.exit_code == 0, elsewhere.output
    assert (tmp_path / "elsewhere" / EVAL_SUMMARY).is_file()
