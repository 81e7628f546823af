"""``tunix_eval.distill``: which samples are kept, the manifest, resuming, the judge hook.

The teacher is a scripted model behind a backend registered through the
``tunix_register_backends`` hook: each question has a fixed list of K completions (some
right, some wrong, some malformed), so the unit under test is the selection, not a model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tunix_core.data.record import ExampleMeta, ReasoningExample, read_jsonl
from tunix_core.data.render import render_prompt
from tunix_core.errors import ConfigError, DataError, TunixError
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import AnswerVerdict, ModelSpec, Prediction
from tunix_eval.distill import (
    DISTILLED,
    MANIFEST,
    QUESTIONS_LOG,
    DistillSettings,
    SampleJudge,
    Sampling,
    Teacher,
    distill,
    open_teacher,
)


def ok(reasoning: str, answer: str) -> str:
    return f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


# question -> (id, category, reference answer, answer_match, the K=3 completions)
SCRIPT = {
    "What is 2 + 3?": ("q1", "small", "5", "auto",
                       [ok("2 plus 3 is 5", "5"), ok("2 plus 3 is 5", "5"), ok("2 and 3 make 6", "6")]),
    "What is 4 + 4?": ("q2", "small", "8", "auto",
                       ["eight", "<answer>8</answer>", ok("4 doubled is 8", "8.")]),
    "What is 9 + 9?": ("q3", "large", "18", "auto",
                       [ok("9 and 9", "17"), ok("nine twice", "19"), ok("guess", "81")]),
    "Write HELLO in lower case.": ("q4", "case", "hello", "exact",
                                   [ok("lower the letters", "Hello"),
                                    ok("lower every letter", "hello"), "<reasoning>"]),
    "What is 1 + 1?": ("q5", "large", "2", "auto",
                       [ok("1 <start_of_turn> 1", "2"), ok("one and one", "2"), ok("", "2")]),
    "Write a line about rain.": ("q6", "poem", "Rain taps the roof.", "free-text",
                                 [ok("rain is soft", "Soft rain sings."), ok("hm", "meh"),
                                  ok("??", "garbled")]),
}  # fmt: skip
K = 3


def examples(*ids: str) -> list[ReasoningExample]:
    made = [
        ReasoningExample(
            id=item_id,
            question=question,
            steps=("a step",),
            answer=answer,
            meta=ExampleMeta(category=category, source="arith-v1", answer_match=match),
        )
        for question, (item_id, category, answer, match, _) in SCRIPT.items()
    ]
    return [e for e in made if e.id in ids] if ids else made


class ScriptedTeacher:
    """Answers each question with its SCRIPT completions, in order; records every call and
    raises on call number ``fail_on_call`` (1-based) as an interrupt would."""

    fail_on_call: ClassVar[int | None] = None
    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        raise AssertionError("distill must sample, not decode greedily")

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        return [0.0 for _ in prompts]

    def sample(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float,
               top_p: float, seed: int) -> list[str]:  # fmt: skip
        ScriptedTeacher.calls.append({"prompts": list(prompts), "seed": seed,
                                      "temperature": temperature, "top_p": top_p})  # fmt: skip
        if len(ScriptedTeacher.calls) == ScriptedTeacher.fail_on_call:
            raise KeyboardInterrupt
        drawn: dict[str, int] = {}
        completions = []
        for prompt in prompts:
            question = next(q for q in SCRIPT if q in prompt)
            completions.append(SCRIPT[question][4][drawn.get(question, 0)])
            drawn[question] = drawn.get(question, 0) + 1
        return completions


class GreedyOnly(ScriptedTeacher):
    sample = None  # type: ignore[assignment]


class ScriptedBackend:
    name = "scripted"
    model_class: ClassVar[type] = ScriptedTeacher

    def validate(self, spec: ModelSpec) -> None:
        if spec.preset != "teacher":
            raise ConfigError(f"model.preset: unknown preset {spec.preset!r}")
        if spec.weights not in ("default", "random"):
            raise ConfigError(f"model.weights: file not found: {spec.weights}")

    def load(self, spec: ModelSpec, *, progress: Any) -> ScriptedTeacher:
        return ScriptedBackend.model_class(spec)


@hookimpl
def _register_backends(registry: Any) -> None:
    registry.register("scripted", f"{__name__}:ScriptedBackend")


def check_auto(answer: str, expected: str, options: Any) -> AnswerVerdict:
    return AnswerVerdict(answer.rstrip(".").casefold() == expected.casefold(), "auto")


def check_exact(answer: str, expected: str, options: Any) -> AnswerVerdict:
    return AnswerVerdict(answer == expected, "exact")


@hookimpl
def _register_answer_checks(registry: Any) -> None:
    registry.register("auto", f"{__name__}:check_auto")
    registry.register("exact", f"{__name__}:check_exact")


@pytest.fixture
def host() -> PluginHost:
    ScriptedTeacher.calls.clear()
    ScriptedTeacher.fail_on_call = None
    ScriptedBackend.model_class = ScriptedTeacher
    host = PluginHost()
    host.add_plugin(plugin_module("distill-test", tunix_register_backends=_register_backends,
                                  tunix_register_answer_checks=_register_answer_checks),
                    "distill-test", "tunix-distill-test")  # fmt: skip
    host.fill_registries()
    return host


TEACHER = Teacher("scripted", "teacher", "default")


def settings(**sampling: Any) -> DistillSettings:
    values = {"samples": K, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 64, "seed": 7,
              "batch_size": 2, "system_prompt": "Think first."} | sampling  # fmt: skip
    return DistillSettings(TEACHER, "arith", "train", Sampling(**values))


def run(host: PluginHost, out: Path, items: Sequence[ReasoningExample], **kwargs: Any) -> dict[str, Any]:
    model = open_teacher(host, TEACHER, print)
    return distill(model, items, kwargs.pop("config", settings()), out,
                   checks=host.answer_checks, **kwargs)  # fmt: skip


CHECKED = ("q1", "q2", "q3", "q4", "q5")


def test_samples_the_item_check_accepts_are_kept_and_the_rest_counted_by_reason(host, tmp_path):
    manifest = run(host, tmp_path, examples(*CHECKED))

    assert manifest["verdicts"] == {
        "kept": 4, "no_answer": 2, "no_reasoning": 2, "wrong_answer": 5, "judge_rejected": 0,
        "judge_unscored": 0, "duplicate": 1, "invalid_record": 1,
    }  # fmt: skip
    assert (manifest["samples"], manifest["kept"]) == (15, 4)
    assert manifest["kept_fraction"] == pytest.approx(4 / 15)
    assert manifest["by_category"] == {
        "case": {"questions": 1, "questions_with_kept_samples": 1, "samples": 3, "kept": 1},
        "large": {"questions": 2, "questions_with_kept_samples": 1, "samples": 6, "kept": 1},
        "small": {"questions": 2, "questions_with_kept_samples": 2, "samples": 6, "kept": 2},
    }
    log = [json.loads(line) for line in (tmp_path / QUESTIONS_LOG).read_text().splitlines()]
    assert [s["verdict"] for s in log[0]["samples"]] == ["kept", "duplicate", "wrong_answer"]
    # The item names the exact check: "Hello" fails it although a casefold check passes it.
    assert [s["verdict"] for s in log[3]["samples"]] == ["wrong_answer", "kept", "no_answer"]
    assert "must not contain the format markup" in log[4]["samples"][0]["problem"]


def test_kept_samples_load_back_as_records_with_the_reference_answer(host, tmp_path):
    run(host, tmp_path, examples(*CHECKED))

    records = read_jsonl(tmp_path / DISTILLED)
    assert [r.id for r in records] == ["q1/s0", "q2/s2", "q4/s1", "q5/s1"]
    by_id = {r.id: r for r in records}
    assert by_id["q2/s2"].reasoning == "4 doubled is 8"
    assert by_id["q2/s2"].answer == "8"  # the reference, not the sample's "8."
    assert by_id["q2/s2"].question == "What is 4 + 4?"
    assert by_id["q4/s1"].meta.answer_match == "exact"
    assert by_id["q1/s0"].meta.source == "distilled by teacher@default from arith-v1"
    assert by_id["q1/s0"].meta.category == "small"


def test_the_manifest_names_teacher_data_sampling_and_progress(host, tmp_path):
    manifest = run(host, tmp_path, examples(*CHECKED), command=["tunix", "distill"])

    assert manifest == json.loads((tmp_path / MANIFEST).read_text())
    assert manifest["settings"] == {
        "teacher": {"backend": "scripted", "preset": "teacher", "weights": "default",
                    "model_id": "teacher@default"},
        "data": {"dataset": "arith", "split": "train", "options": {}},
        "sampling": {"samples": 3, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 64,
                     "seed": 7, "batch_size": 2, "system_prompt": "Think first."},
        "judge": None,
    }  # fmt: skip
    assert (manifest["questions_total"], manifest["questions_done"]) == (5, 5)
    assert manifest["complete"] is True
    assert manifest["command"] == ["tunix", "distill"]
    assert manifest["seconds"] >= 0
    # Each question is asked K times in one call per batch, rendered as training renders it,
    # and batch i draws with seed + i.
    calls = ScriptedTeacher.calls
    assert [call["seed"] for call in calls] == [7, 8, 9]
    assert calls[0]["prompts"] == [render_prompt("What is 2 + 3?", "Think first.")] * 3 + [
        render_prompt("What is 4 + 4?", "Think first.")] * 3  # fmt: skip
    assert (calls[0]["temperature"], calls[0]["top_p"]) == (0.8, 0.95)


def test_an_interrupted_distillation_resumes_without_asking_done_questions_again(host, tmp_path):
    whole = run(host, tmp_path / "whole", examples(*CHECKED))
    ScriptedTeacher.calls.clear()
    ScriptedTeacher.fail_on_call = 2
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run(host, out, examples(*CHECKED))
    interrupted = json.loads((out / MANIFEST).read_text())
    assert (interrupted["questions_done"], interrupted["complete"]) == (2, False)
    assert len(read_jsonl(out / DISTILLED)) == 2

    ScriptedTeacher.calls.clear()
    ScriptedTeacher.fail_on_call = None
    lines: list[str] = []
    resumed = run(host, out, examples(*CHECKED), progress=lines.append)

    asked = "".join(p for call in ScriptedTeacher.calls for p in call["prompts"])
    assert "2 + 3" not in asked and "4 + 4" not in asked
    assert [call["seed"] for call in ScriptedTeacher.calls] == [8, 9]  # as uninterrupted
    assert "2 already done" in lines[0]
    assert (out / DISTILLED).read_text() == (tmp_path / "whole" / DISTILLED).read_text()
    for key in ("verdicts", "by_category", "samples", "kept", "questions_done", "complete"):
        assert resumed[key] == whole[key], key
    assert resumed["created_at"] == interrupted["created_at"]


# A cut after 30 characters, or inside a two-byte character (which no longer decodes).
TORN_TAILS = [lambda line: line[:30].encode(), lambda line: (line[:30] + "é").encode()[:-1]]


@pytest.mark.parametrize("torn", TORN_TAILS, ids=["ascii", "inside-a-character"])
def test_a_rerun_repairs_a_torn_log_line_and_records_missing_after_a_crash(host, tmp_path, torn):
    ScriptedTeacher.fail_on_call = 3
    with pytest.raises(KeyboardInterrupt):
        run(host, tmp_path, examples(*CHECKED))
    log = tmp_path / QUESTIONS_LOG
    # A crash after the second batch's log line was half written, before its records were.
    text = log.read_text()
    log.write_bytes(text.encode() + torn(text.splitlines()[-1]))
    (tmp_path / DISTILLED).write_text("")
    ScriptedTeacher.fail_on_call = None

    manifest = run(host, tmp_path, examples(*CHECKED))

    assert manifest["questions_done"] == 5
    assert [json.loads(line)["id"] for line in log.read_text().splitlines()] == list(CHECKED)
    assert sorted(r.id for r in read_jsonl(tmp_path / DISTILLED)) == [
        "q1/s0", "q2/s2", "q4/s1", "q5/s1"]  # fmt: skip


def test_a_larger_limit_extends_an_earlier_distillation(host, tmp_path):
    run(host, tmp_path, examples("q1", "q2"))
    ScriptedTeacher.calls.clear()
    manifest = run(host, tmp_path, examples(*CHECKED))
    assert len(ScriptedTeacher.calls) == 2
    assert (manifest["questions_done"], manifest["kept"]) == (5, 4)


def test_a_rerun_with_other_settings_is_refused_naming_what_changed(host, tmp_path):
    run(host, tmp_path, examples("q1"))
    with pytest.raises(TunixError, match=r"other settings \(sampling\.temperature: 0\.8 -> 1\.0\)"):
        run(host, tmp_path, examples("q1"), config=settings(temperature=1.0))


def test_a_folder_with_outputs_but_no_manifest_is_refused(host, tmp_path):
    (tmp_path / DISTILLED).write_text("")
    with pytest.raises(TunixError, match=r"found distilled\.jsonl but no manifest\.json"):
        run(host, tmp_path, examples("q1"))
    assert ScriptedTeacher.calls == []


def test_the_judge_decides_its_categories_and_the_sample_answer_is_kept(host, tmp_path):
    judged: list[Prediction] = []

    def verdicts(predictions: Sequence[Prediction]) -> list[bool | None]:
        judged.extend(predictions)
        said = {"Soft rain sings.": True, "meh": False, "garbled": None}
        return [said[p.completion.split("<answer>")[1].split("</answer>")[0]] for p in predictions]

    judge = SampleJudge(frozenset({"poem"}), verdicts, {"preset": "critic"})
    manifest = run(host, tmp_path, examples("q1", "q6"), judge=judge)

    assert [p.id for p in judged] == ["q6/s0", "q6/s1", "q6/s2"]  # only the judged category
    assert judged[0].expected == "Rain taps the roof."
    assert manifest["settings"]["judge"] == {"preset": "critic", "categories": ["poem"]}
    assert manifest["by_category"]["poem"]["kept"] == 1
    assert (manifest["verdicts"]["judge_rejected"], manifest["verdicts"]["judge_unscored"]) == (1, 1)
    poem = [r for r in read_jsonl(tmp_path / DISTILLED) if r.id.startswith("q6")]
    assert [(r.reasoning, r.answer) for r in poem] == [("rain is soft", "Soft rain sings.")]


def test_an_item_naming_an_uninstalled_check_stops_before_the_teacher_is_asked(host, tmp_path):
    # q6 names "free-text", which only a judge can decide.
    with pytest.raises(DataError, match=r"item 'q6': meta\.answer_match: .*free-text"):
        run(host, tmp_path, examples("q1", "q6"))
    assert ScriptedTeacher.calls == []


@pytest.mark.parametrize(
    ("teacher", "message"),
    [
        (Teacher("torch", "teacher", "default"), r"^--backend: Unknown model backend 'torch'"),
        (Teacher("scripted", "giant", "default"), r"^--teacher-preset: unknown preset 'giant'$"),
        (Teacher("scripted", "teacher", "gguf:x.gguf"),
         r"^--teacher-weights: file not found: gguf:x\.gguf$"),
    ],
)  # fmt: skip
def test_a_teacher_that_cannot_be_loaded_is_one_line_naming_the_flag(host, teacher, message):
    with pytest.raises(ConfigError, match=message):
        open_teacher(host, teacher, print)


def test_a_backend_whose_models_cannot_sample_is_refused(host):
    ScriptedBackend.model_class = GreedyOnly
    with pytest.raises(ConfigError, match=r"^--backend scripted: its models cannot draw samples"):
        open_teacher(host, TEACHER, print)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("samples", 0, r"^--samples: must be at least 1, got 0$"),
        ("temperature", -0.5, r"^--temperature: must be at least 0.0, got -0.5$"),
        ("top_p", 0.0, r"^--top-p: must be in \(0, 1\], got 0.0$"),
        ("max_new_tokens", 0, r"^--max-new-tokens: must be at least 1, got 0$"),
        ("batch_size", 0, r"^--batch-size: must be at least 1, got 0$"),
    ],
)
def test_bad_sampling_settings_name_their_flag(field, value, message):
    with pytest.raises(ConfigError, match=message):
        settings(**{field: value})
