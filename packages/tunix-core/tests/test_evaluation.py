"""The generic predict-and-score loop: files, verdicts, scorecard and resume."""

from __future__ import annotations

import json
import math
import types
from collections.abc import Sequence
from pathlib import Path

import attrs
import pytest

from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.data.render import render_prompt
from tunix_core.errors import DataError, EvidenceError, PluginError, TunixError
from tunix_core.evaluation import (
    answer_checks_of,
    binomial_stderr,
    check_answer,
    evaluate_examples,
    headline_metrics,
    read_summary,
    score_predictions,
)
from tunix_core.evidence import validate_file
from tunix_core.hookspecs import hookimpl
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import (
    AnswerOptions,
    AnswerVerdict,
    EvaluatorReport,
    Prediction,
    RunContext,
)

SYSTEM = "Answer in tags."


# Stand-ins for the answer checks of tunix-eval, which the core's tests do not install.
def folded(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    return AnswerVerdict(answer.strip().casefold() == expected.casefold(), "folded")


def verbatim(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    if not expected.isalpha():
        raise ValueError(f"needs a word, got {expected!r}")
    return AnswerVerdict(answer.strip() == expected, "verbatim")


def not_a_verdict(answer: str, expected: str, options: AnswerOptions) -> bool:
    return True


@hookimpl
def _register_checks(registry):
    registry.register("auto", f"{__name__}:folded", description="case-folded equality")
    registry.register("verbatim", f"{__name__}:verbatim")
    registry.register("sloppy", f"{__name__}:not_a_verdict")
    registry.register("gone", f"{__name__}:no_such_function")


def host_with_checks(*extra: types.ModuleType) -> PluginHost:
    host = PluginHost()
    plugins = [plugin_module("test-plugin", tunix_register_answer_checks=_register_checks), *extra]
    for index, plugin in enumerate(plugins):
        host.add_plugin(plugin, f"checks{index}", f"tunix-checks-{index}")
    host.fill_registries()
    return host


HOST = host_with_checks()
CHECKS = HOST.answer_checks
CONTEXT = RunContext(HOST)


def example(item_id: str, question: str, answer: str, category: str, difficulty: str = "easy",
            answer_match: str = "auto"):  # fmt: skip
    return ReasoningExample(
        id=item_id,
        question=question,
        steps=("think",),
        answer=answer,
        meta=ExampleMeta(
            category=category, section="core", difficulty=difficulty, answer_match=answer_match
        ),
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

    def evaluate(self, predictions: Sequence[Prediction], *, context: RunContext) -> EvaluatorReport:
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
        context=CONTEXT,
        **kw,
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_writes_valid_predictions_and_summary(tmp_path):
    messages: list[str] = []
    summary = run(tmp_path, progress=messages.append, source={"dataset": "unit"})
    assert validate_file(tmp_path / PREDICTIONS) == []
    assert validate_file(tmp_path / EVAL_SUMMARY) == []
    assert read_summary(tmp_path / EVAL_SUMMARY) == summary

    records = lines(tmp_path / PREDICTIONS)
    assert [r["id"] for r in records] == ["q1", "q2", "q3", "q4", "q5"]
    first = records[0]
    assert first["prompt"] == render_prompt("What is 2 + 2?", SYSTEM)
    assert first["prompt"].endswith("<start_of_turn>model\n")
    assert (first["extracted_answer"], first["correct"], first["format_ok"]) == ("4", True, True)
    assert first["meta"] == {"category": "arithmetic", "section": "core", "difficulty": "easy",
                             "source": ""}  # fmt: skip
    # Without evaluators the core's fallbacks decide: the item's answer check, the parser.
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
    assert summary["decided_by"] == {"extracted_answer": "parser", "correct": "answer_check",
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


@pytest.mark.parametrize("torn", [b'{"id": "q4", "prom', '{"id": "q4", "prompt": "é'.encode()[:-1]],
                         ids=["ascii", "inside-a-character"])  # fmt: skip
def test_resume_generates_only_missing_ids_and_drops_a_torn_line(tmp_path, torn):
    first = ScriptedGenerator()
    run(tmp_path, first, examples=EXAMPLES[:3])  # as if interrupted after three items
    path = tmp_path / PREDICTIONS
    path.write_bytes(path.read_bytes() + torn)  # killed mid-append

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
                      max_new_tokens=8, batch_size=4, out_dir=tmp_path, label="x",
                      context=CONTEXT)  # fmt: skip
    assert len(generator.prompts) == 2
    assert all(r["prompt"].startswith("<start_of_turn>user\nAnother prompt.") for r in
               lines(tmp_path / PREDICTIONS))  # fmt: skip


def test_an_evaluator_decides_verdicts_and_keeps_its_fields(tmp_path):
    summary = run(tmp_path, evaluators=[LenientAnswers()])
    records = lines(tmp_path / PREDICTIONS)
    assert records[0]["scores"] == {"lenient": {"correct": True, "length": 1}}
    assert summary["decided_by"]["correct"] == "lenient"
    assert summary["decided_by"]["format_ok"] == "parser"
    assert summary["evaluators"] == {"lenient": {"checked": 5}}
    # "paris" vs "Paris" is correct either way; "It is six." has no answer block.
    assert summary["primary_score"] == pytest.approx(3 / 5)


class AlwaysWrong:
    name = "strict"

    def evaluate(self, predictions, *, context):
        return EvaluatorReport({}, {p.id: {"correct": False} for p in predictions})


def test_the_first_evaluator_that_returns_a_verdict_wins(tmp_path):
    summary = run(tmp_path, evaluators=[AlwaysWrong(), LenientAnswers()])
    assert summary["primary_score"] == 0.0
    assert summary["decided_by"]["correct"] == "strict"


class BadVerdict:
    name = "bad"

    def __init__(self, fields):
        self.fields = fields

    def evaluate(self, predictions, *, context):
        return EvaluatorReport({}, {p.id: dict(self.fields) for p in predictions})


@pytest.mark.parametrize("fields", [{"correct": "yes"}, {"note": object()}, {"x": float("nan")}])
def test_an_evaluator_with_invalid_output_is_refused(tmp_path, fields):
    with pytest.raises(EvidenceError):
        run(tmp_path, evaluators=[BadVerdict(fields)])
    assert not (tmp_path / EVAL_SUMMARY).exists()


def test_score_predictions_without_out_dir_writes_nothing(tmp_path):
    predictions = [Prediction("a", "", "<reasoning>r</reasoning><answer>1</answer>", "1")]
    summary = score_predictions(predictions, [], label="file", context=CONTEXT)
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
        score_predictions(twice, [], label="dup", context=CONTEXT)


class WrongCount:
    def generate(self, prompts, *, max_new_tokens):
        return ["only one"]


def test_a_generator_returning_the_wrong_number_of_completions_is_an_error(tmp_path):
    with pytest.raises(TunixError, match="one string per prompt"):
        run(tmp_path, WrongCount())


def test_read_summary_and_headline_metrics(tmp_path):
    assert read_summary(tmp_path / "missing.json") is None
    assert headline_metrics(None) == {}
    bad = tmp_path / EVAL_SUMMARY
    bad.write_text('{"label": "x"}')
    with pytest.raises(EvidenceError, match="primary_score"):
        read_summary(bad)


def test_binomial_stderr():
    assert binomial_stderr(0, 0) == 0.0
    assert binomial_stderr(5, 5) == 0.0
    assert binomial_stderr(1, 4) == pytest.approx(math.sqrt(0.25 * 0.75 / 4))


def test_answer_checks_are_the_hosts_registry_and_attributed():
    host = host_with_checks()
    checks = answer_checks_of(host)
    assert checks.names() == ["auto", "gone", "sloppy", "verbatim"]
    assert checks.entry("verbatim").distribution == "tunix-checks-0"
    assert answer_checks_of(host) is checks


def _item(meta: dict, expected: str = "Paris") -> Prediction:
    return Prediction("q3", "", "<answer>paris</answer>", expected, meta)


def test_check_answer_uses_the_check_meta_names():
    assert check_answer(_item({}), "paris", CHECKS) == AnswerVerdict(True, "folded")
    assert check_answer(_item({"answer_match": "verbatim"}), "paris", CHECKS) == AnswerVerdict(
        False, "verbatim"
    )
    assert check_answer(_item({"answer_match": "verbatim"}), None, CHECKS) == AnswerVerdict(
        False, "missing"
    )


@pytest.mark.parametrize(
    ("meta", "expected", "error", "message"),
    [
        ({"answer_match": "verbatimm"}, "Paris", DataError,
         r"item 'q3': meta\.answer_match: Unknown answer check 'verbatimm'\. Installed: auto, "
         r"gone, sloppy, verbatim\. Did you mean 'verbatim'\?"),
        ({"answer_match": 1}, "Paris", DataError, r"item 'q3': meta\.answer_match must be a string"),
        ({"answer_match": "verbatim"}, "42", DataError,
         r"item 'q3': answer check 'verbatim': needs a word, got '42'"),
        ({"answer_match": "sloppy"}, "Paris", PluginError,
         r"answer check 'sloppy' returned bool, not an AnswerVerdict"),
        ({"answer_match": "gone"}, "Paris", PluginError,
         r"answer check 'gone' from tunix-checks-0 cannot be loaded from '.*:no_such_function'"),
    ],
)  # fmt: skip
def test_check_answer_errors_name_the_item_and_the_check(meta, expected, error, message):
    with pytest.raises(error, match=message):
        check_answer(_item(meta, expected), "paris", CHECKS)


@hookimpl
def _register_another_auto(registry):
    registry.register("auto", f"{__name__}:verbatim")


def test_a_name_two_plugins_register_is_refused_when_used():
    duplicate = plugin_module("test-plugin", tunix_register_answer_checks=_register_another_auto)
    checks = answer_checks_of(host_with_checks(duplicate))
    with pytest.raises(
        DataError,
        match=r"item 'q3': meta\.answer_match: answer check 'auto' is "
        r"registered by tunix-checks-\d .* and tunix-checks-\d",
    ):
        check_answer(_item({}), "paris", checks)


def test_the_fallback_follows_meta_answer_match_into_the_files(tmp_path):
    strict = [attrs.evolve(e, meta=attrs.evolve(e.meta, answer_match="verbatim"))
              if e.id == "q3" else e for e in EXAMPLES]  # fmt: skip
    summary = run(tmp_path, examples=strict)
    records = {r["id"]: r for r in lines(tmp_path / PREDICTIONS)}
    assert records["q3"]["correct"] is False  # "paris" for "Paris" is not verbatim
    assert records["q3"]["meta"]["answer_match"] == "verbatim"
    assert "answer_match" not in records["q1"]["meta"]  # absent means auto
    assert summary["counts"]["correct"] == 2


def test_reused_completions_are_judged_by_the_items_current_check(tmp_path):
    run(tmp_path)  # lines written before q3 named a check
    strict = [attrs.evolve(e, meta=attrs.evolve(e.meta, answer_match="verbatim"))
              if e.id == "q3" else e for e in EXAMPLES]  # fmt: skip
    generator = ScriptedGenerator()
    summary = run(tmp_path, generator, examples=strict)
    assert generator.calls == []  # every completion was reused
    assert summary["counts"]["correct"] == 2


def test_an_item_naming_an_unknown_check_stops_before_generation(tmp_path):
    typo = [*EXAMPLES[:2], example("q9", "Is 9 odd?", "yes", "logic", answer_match="yes-no")]
    generator = ScriptedGenerator()
    with pytest.raises(DataError, match=r"baseline: item 'q9': meta\.answer_match: Unknown "
                                        r"answer check 'yes-no'"):  # fmt: skip
        run(tmp_path, generator, examples=typo)
    assert generator.calls == []
