"""The generic predict-and-score loop: files, verdicts, scorecard and resume."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.data.render import render_prompt
from tunix_core.errors import EvidenceError, TunixError
from tunix_core.evaluation import (
    PREDICTIONS_FILE,
    SUMMARY_FILE,
    binomial_stderr,
    evaluate_examples,
    headline_metrics,
    read_summary,
    score_predictions,
)
from tunix_core.evidence import validate_file
from tunix_core.protocols import EvaluatorReport, Prediction

SYSTEM = "Answer in tags."


def example(item_id: str, question: str, answer: str, category: str, difficulty: str = "easy"):
    return ReasoningExample(
        id=item_id,
        question=question,
        steps=("think",),
        answer=answer,
        meta=ExampleMeta(category=category, section="core", difficulty=difficulty),
    )


EXAMPLES = [
    example("q1", "What is 2 + 2?", "4", "arithmetic"),
    example("q2", "What is 3 * 3?", "9", "arithmetic", "medium"),
    example("q3", "Capital of France?", "Paris", "geography"),
    example("q4", "Is 7 prime?", "yes", "logic", "hard"),
    example("q5", "What is 10 - 4?", "6", "arithmetic"),
]

# What the stand-in model answers, keyed by question: two right in the exact format,
# one right but loosely formatted, one wrong, one with no answer block at all.
SCRIPT = {
    "What is 2 + 2?": "<reasoning>2 plus 2 is 4.</reasoning><answer>4</answer>",
    "What is 3 * 3?": "<reasoning>3 times 3.</reasoning><answer>9</answer>",
    "Capital of France?": "Sure! <reasoning>France.</reasoning><answer>paris</answer>",
    "Is 7 prime?": "<reasoning>7 = 7 * 1.</reasoning><answer>no</answer>",
    "What is 10 - 4?": "It is six.",
}


class ScriptedGenerator:
    """A deterministic stand-in for a model: reads the question out of the rendered
    prompt and answers from :data:`SCRIPT`; records every prompt it was asked."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        self.calls.append(list(prompts))
        return [SCRIPT[p.split("\n\n", 1)[1].split("<end_of_turn>", 1)[0]] for p in prompts]

    @property
    def prompts(self) -> list[str]:
        return [p for call in self.calls for p in call]


class LenientAnswers:
    """An evaluator that decides ``correct`` by case-insensitive equality and adds a field."""

    name = "lenient"

    def evaluate(self, predictions: Sequence[Prediction]) -> EvaluatorReport:
        per_item = {}
        for p in predictions:
            answer = p.completion.rpartition("<answer>")[2].partition("</answer>")[0]
            per_item[p.id] = {
                "correct": answer.lower() == p.expected.lower(),
                "length": len(answer),
            }
        return EvaluatorReport(metrics={"checked": len(predictions)}, per_item=per_item)


def run(tmp_path: Path, generator=None, evaluators=(), batch_size=2, examples=EXAMPLES, **kw):
    return evaluate_examples(
        generator or ScriptedGenerator(),
        examples,
        list(evaluators),
        system_prompt=SYSTEM,
        max_new_tokens=32,
        batch_size=batch_size,
        out_dir=tmp_path,
        label="baseline",
        **kw,
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_valid_predictions_and_summary(tmp_path):
    messages: list[str] = []
    summary = run(tmp_path, progress=messages.append, source={"dataset": "unit"})
    assert validate_file(tmp_path / PREDICTIONS_FILE) == []
    assert validate_file(tmp_path / SUMMARY_FILE) == []
    assert read_summary(tmp_path / SUMMARY_FILE) == summary

    records = lines(tmp_path / PREDICTIONS_FILE)
    assert [r["id"] for r in records] == ["q1", "q2", "q3", "q4", "q5"]
    first = records[0]
    assert first["prompt"] == render_prompt("What is 2 + 2?", SYSTEM)
    assert first["prompt"].endswith("<start_of_turn>model\n")
    assert (first["extracted_answer"], first["correct"], first["format_ok"]) == ("4", True, True)
    assert first["meta"] == {"category": "arithmetic", "section": "core", "difficulty": "easy",
                             "source": ""}  # fmt: skip
    # Without evaluators the core's fallbacks decide: exact match (case-folded), the parser.
    loose = records[2]
    assert (loose["extracted_answer"], loose["correct"], loose["format_ok"]) == (
        "paris",
        True,
        False,
    )
    assert records[4]["extracted_answer"] is None and records[4]["correct"] is False

    assert summary["primary_score"] == pytest.approx(3 / 5)
    assert summary["primary_score_stderr"] == pytest.approx(math.sqrt(0.6 * 0.4 / 5))
    assert summary["counts"] == {"items": 5, "correct": 3, "format_ok": 3, "answered": 4}
    assert summary["decided_by"] == {"extracted_answer": "parser", "correct": "exact_match",
                                     "format_ok": "parser"}  # fmt: skip
    by_category = summary["scorecard"]["by_category"]
    assert by_category["arithmetic"]["n"] == 3 and by_category["arithmetic"]["correct"] == 2
    assert by_category["geography"]["format_compliance"] == 0.0
    assert summary["scorecard"]["by_difficulty"]["hard"]["answer_accuracy"] == 0.0
    assert summary["generation"]["generated"] == 5 and summary["generation"]["reused"] == 0
    assert summary["source"] == {"dataset": "unit"}
    assert headline_metrics(summary) == {"format_compliance": 0.6, "answer_accuracy": 0.6}
    assert any("generated 5/5" in m for m in messages)


def test_generates_in_batches_of_batch_size(tmp_path):
    generator = ScriptedGenerator()
    run(tmp_path, generator, batch_size=2)
    assert [len(call) for call in generator.calls] == [2, 2, 1]


def test_resume_generates_only_missing_ids_and_drops_a_torn_line(tmp_path):
    first = ScriptedGenerator()
    run(tmp_path, first, examples=EXAMPLES[:3])  # as if interrupted after three items
    path = tmp_path / PREDICTIONS_FILE
    path.write_text(path.read_text() + '{"id": "q4", "prom')  # killed mid-append

    second = ScriptedGenerator()
    summary = run(tmp_path, second)
    asked = [p.split("\n\n", 1)[1].split("<end_of_turn>")[0] for p in second.prompts]
    assert asked == ["Is 7 prime?", "What is 10 - 4?"]
    assert [r["id"] for r in lines(path)] == ["q1", "q2", "q3", "q4", "q5"]
    assert validate_file(path) == []
    assert summary["generation"]["reused"] == 3 and summary["generation"]["generated"] == 2
    assert summary["counts"]["items"] == 5


def test_resume_regenerates_items_whose_prompt_changed(tmp_path):
    run(tmp_path, examples=EXAMPLES[:2])
    generator = ScriptedGenerator()
    evaluate_examples(generator, EXAMPLES[:2], [], system_prompt="Another prompt.",
                      max_new_tokens=8, batch_size=4, out_dir=tmp_path, label="x")  # fmt: skip
    assert len(generator.prompts) == 2
    assert all(r["prompt"].startswith("<start_of_turn>user\nAnother prompt.") for r in
               lines(tmp_path / PREDICTIONS_FILE))  # fmt: skip


def test_an_evaluator_decides_verdicts_and_keeps_its_fields(tmp_path):
    summary = run(tmp_path, evaluators=[LenientAnswers()])
    records = lines(tmp_path / PREDICTIONS_FILE)
    assert records[0]["scores"] == {"lenient": {"correct": True, "length": 1}}
    assert summary["decided_by"]["correct"] == "lenient"
    assert summary["decided_by"]["format_ok"] == "parser"
    assert summary["evaluators"] == {"lenient": {"checked": 5}}
    # "paris" vs "Paris" is correct either way; "It is six." has no answer block.
    assert summary["primary_score"] == pytest.approx(3 / 5)


class AlwaysWrong:
    name = "strict"

    def evaluate(self, predictions):
        return EvaluatorReport({}, {p.id: {"correct": False} for p in predictions})


def test_the_first_evaluator_that_returns_a_verdict_wins(tmp_path):
    summary = run(tmp_path, evaluators=[AlwaysWrong(), LenientAnswers()])
    assert summary["primary_score"] == 0.0
    assert summary["decided_by"]["correct"] == "strict"


class BadVerdict:
    name = "bad"

    def __init__(self, fields):
        self.fields = fields

    def evaluate(self, predictions):
        return EvaluatorReport({}, {p.id: dict(self.fields) for p in predictions})


@pytest.mark.parametrize("fields", [{"correct": "yes"}, {"note": object()}, {"x": float("nan")}])
def test_an_evaluator_with_invalid_output_is_refused(tmp_path, fields):
    with pytest.raises(EvidenceError):
        run(tmp_path, evaluators=[BadVerdict(fields)])
    assert not (tmp_path / SUMMARY_FILE).exists()


def test_score_predictions_without_out_dir_writes_nothing(tmp_path):
    predictions = [Prediction("a", "", "<reasoning>r</reasoning><answer>1</answer>", "1")]
    summary = score_predictions(predictions, [], label="file")
    assert summary["primary_score"] == 1.0
    assert summary["generation"] is None
    assert summary["scorecard"]["by_category"] == {"unknown": summary["scorecard"]["overall"]}
    assert list(tmp_path.iterdir()) == []


def test_nothing_to_evaluate_and_duplicate_ids_are_errors(tmp_path):
    with pytest.raises(TunixError, match="nothing to evaluate"):
        run(tmp_path, examples=[])
    generator = ScriptedGenerator()
    with pytest.raises(TunixError, match="'q1' appears more than once"):
        run(tmp_path, generator, examples=[EXAMPLES[0], EXAMPLES[0]])
    assert generator.calls == []
    twice = [Prediction("a", "", "x", "1"), Prediction("a", "", "y", "2")]
    with pytest.raises(TunixError, match="more than once"):
        score_predictions(twice, [], label="dup")


class WrongCount:
    def generate(self, prompts, *, max_new_tokens):
        return ["only one"]


def test_a_generator_returning_the_wrong_number_of_completions_is_an_error(tmp_path):
    with pytest.raises(TunixError, match="one string per prompt"):
        run(tmp_path, WrongCount())


def test_read_summary_and_headline_metrics(tmp_path):
    assert read_summary(tmp_path / "missing.json") is None
    assert headline_metrics(None) == {}
    bad = tmp_path / SUMMARY_FILE
    bad.write_text('{"label": "x"}')
    with pytest.raises(EvidenceError, match="primary_score"):
        read_summary(bad)


def test_binomial_stderr():
    assert binomial_stderr(0, 0) == 0.0
    assert binomial_stderr(5, 5) == 0.0
    assert binomial_stderr(1, 4) == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
