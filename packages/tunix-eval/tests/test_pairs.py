"""``tunix_eval.pairs``: how samples are classed and paired, the counts, resuming, and that
the preference trainers' loader reads what it writes.

The model is a scripted sampler handed to :func:`build_pairs` (which, as distill, takes
any :class:`SamplingModel`): each question has a fixed list of K completions, so the
unit under test is the classing and pairing, not a model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.data.render import END_OF_TURN, render_prompt, render_reasoning_completion
from tunix_core.errors import ConfigError, TunixError
from tunix_eval.pairs import PairsSettings, build_pairs
from tunix_eval.sampling_job import Sampling
from tunix_jax.rl.preference.data import load_pairs

from .conftest import SamplingOnly, make_host


def ok(reasoning: str, answer: str) -> str:
    return f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


# question -> (id, reference answer, answer_match, the K=3 completions)
SCRIPT = {
    "What is 2 + 3?": ("answer", "5", "auto",
                       ["<answer>5</answer>", ok("2 and 3 make 6", "6"), ok("2 plus 3 is 5", "5")]),
    "What is 4 + 4?": ("format-right", "8", "auto",
                       ["", ok("4 doubled", "8") + END_OF_TURN, "eight"]),
    "What is 9 + 9?": ("format-wrong", "18", "auto",
                       [ok("nine twice", "19"), "<reasoning>9 and 9</reasoning>", ok("9 + 9", "17")]),
    "Write HELLO in lower case.": ("exact-check", "hello", "exact",
                                   [ok("lower the letters", "Hello"), ok("every letter", "hello"),
                                    ok("again", "hello")]),
    "What is 1 + 1?": ("all-correct", "2", "auto",
                       [ok("one and one", "2"), "  ", ok("1 plus 1", "2")]),
    "What is 3 + 3?": ("all-wrong", "6", "auto",
                       [ok("three twice", "7"), ok("3 + 3", "9"), END_OF_TURN]),
    "What is 5 + 5?": ("all-broken", "10", "auto",
                       ["10", "<answer>10</answer><reasoning>5 + 5</reasoning>", ""]),
}  # fmt: skip
K = 3


def examples() -> list[ReasoningExample]:
    return [
        ReasoningExample(
            id=item_id,
            question=question,
            steps=("a step",),
            answer=answer,
            meta=ExampleMeta(category="arith", answer_match=match),
        )
        for question, (item_id, answer, match, _) in SCRIPT.items()
    ]


class ScriptedSampler(SamplingOnly):
    """Answers each question with its SCRIPT completions, in order; records every call and
    raises on call number ``fail_on_call`` (1-based) as an interrupt would."""

    def __init__(self, fail_on_call: int | None = None) -> None:
        self.fail_on_call = fail_on_call
        self.calls: list[dict[str, Any]] = []

    def sample(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float,
               top_p: float, seed: int) -> list[str]:  # fmt: skip
        self.calls.append({"prompts": list(prompts), "seed": seed})
        if len(self.calls) == self.fail_on_call:
            raise KeyboardInterrupt
        drawn: dict[str, int] = {}
        completions = []
        for prompt in prompts:
            question = next(q for q in SCRIPT if q in prompt)
            completions.append(SCRIPT[question][3][drawn.get(question, 0)])
            drawn[question] = drawn.get(question, 0) + 1
        return completions


def settings(**sampling: Any) -> PairsSettings:
    values = {"samples": K, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 64, "seed": 7,
              "batch_size": 2, "system_prompt": "Think first."} | sampling  # fmt: skip
    model = {"backend": "scripted", "preset": "p", "weights": "default", "model_id": "p@default"}
    return PairsSettings(model, "arith", "train", Sampling(**values))


def run(out: Path, model: ScriptedSampler | None = None, **kwargs: Any) -> dict[str, Any]:
    return build_pairs(model or ScriptedSampler(), kwargs.pop("items", examples()),
                       kwargs.pop("config", settings()), out, checks=make_host().answer_checks,
                       model_label="p@default via scripted", **kwargs)  # fmt: skip


def pairs_of(path: Path) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in map(json.loads, path.read_text().splitlines())}


def test_each_question_pairs_an_accepted_with_a_wrong_answer_else_formatted_with_broken(tmp_path):
    summary = run(tmp_path / "p.jsonl")

    pairs = pairs_of(tmp_path / "p.jsonl")
    assert {item: (p["category"], p["chosen"], p["rejected"]) for item, p in pairs.items()} == {
        # The first accepted and the first wrong one; the broken first sample is passed over.
        "answer": ("answer", ok("2 plus 3 is 5", "5"), ok("2 and 3 make 6", "6")),
        # An empty sample is never a rejected one.
        "format-right": ("format", ok("4 doubled", "8") + END_OF_TURN, "eight"),
        # No accepted sample: a formatted wrong one is still preferred to a broken one.
        "format-wrong": ("format", ok("nine twice", "19"), "<reasoning>9 and 9</reasoning>"),
        # The item's own check (exact): "Hello" is wrong although a casefold check takes it.
        "exact-check": ("answer", ok("every letter", "hello"), ok("lower the letters", "Hello")),
    }  # fmt: skip
    assert pairs["answer"]["prompt"] == "What is 2 + 3?"
    assert summary["pairs_by_category"] == {"answer": 2, "format": 2}
    assert summary["unpaired_by_reason"] == {"all_correct": 1, "all_wrong": 1, "all_broken": 1}
    assert (summary["pairs"], summary["unpaired"], summary["questions_done"]) == (4, 3, 7)
    assert summary["samples_by_class"] == {"accepted": 6, "wrong_answer": 6, "broken_format": 5,
                                           "empty": 4}  # fmt: skip
    assert summary["samples"] == 21
    log = [json.loads(line) for line in (tmp_path / "p.questions.jsonl").read_text().splitlines()]
    assert [s["class"] for s in log[0]["samples"]] == ["broken_format", "wrong_answer", "accepted"]
    assert [line.get("unpaired") for line in log[4:]] == ["all_correct", "all_wrong", "all_broken"]


def test_the_preference_loader_reads_the_pairs_rendered_as_the_trainers_render_them(tmp_path):
    run(tmp_path / "p.jsonl")

    loaded = load_pairs(str(tmp_path / "p.jsonl"), "Be brief.")

    assert [pair.location for pair in loaded] == [
        f"{tmp_path / 'p.jsonl'}:{n}" for n in (1, 2, 3, 4)
    ]
    assert loaded[0].prompt == render_prompt("What is 2 + 3?", "Be brief.")
    assert loaded[0].chosen == render_reasoning_completion("2 plus 3 is 5", "5")
    assert loaded[1].rejected == "eight" + END_OF_TURN  # a broken reply is kept as written


def test_the_summary_names_model_data_sampling_and_files(tmp_path):
    model = ScriptedSampler()
    summary = run(tmp_path / "p.jsonl", model, command=["tunix", "pairs"])

    assert summary == json.loads((tmp_path / "p.summary.json").read_text())
    assert summary["settings"] == {
        "model": {"backend": "scripted", "preset": "p", "weights": "default", "model_id": "p@default"},
        "data": {"dataset": "arith", "split": "train", "options": {}},
        "sampling": {"samples": 3, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 64,
                     "seed": 7, "batch_size": 2, "system_prompt": "Think first."},
    }  # fmt: skip
    assert summary["files"] == {"pairs": "p.jsonl", "questions": "p.questions.jsonl"}
    assert (summary["pairs_version"], summary["complete"], summary["command"]) == (
        1,
        True,
        ["tunix", "pairs"],
    )
    # K samples of each question in one call per batch, batch i drawing with seed + i.
    assert [call["seed"] for call in model.calls] == [7, 8, 9, 10]
    assert model.calls[0]["prompts"] == [render_prompt("What is 2 + 3?", "Think first.")] * 3 + [
        render_prompt("What is 4 + 4?", "Think first.")] * 3  # fmt: skip


def test_an_interrupted_run_resumes_to_what_an_uninterrupted_one_writes(tmp_path):
    whole = run(tmp_path / "whole.jsonl")
    out = tmp_path / "cut.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(out, ScriptedSampler(fail_on_call=3))
    # A crash in the middle of the second batch's log line, before its pairs were written.
    log = tmp_path / "cut.questions.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:2]) + lines[2][:40])
    out.write_text(out.read_text().splitlines(keepends=True)[0])
    progress: list[str] = []

    model = ScriptedSampler()
    resumed = run(out, model, progress=progress.append)

    asked = "".join(prompt for call in model.calls for prompt in call["prompts"])
    assert "2 + 3" not in asked and "4 + 4" not in asked and "9 + 9" in asked
    assert [call["seed"] for call in model.calls] == [8, 9, 10]  # as uninterrupted
    assert "2 already done" in progress[0]
    assert out.read_text() == (tmp_path / "whole.jsonl").read_text()
    assert log.read_text() == (tmp_path / "whole.questions.jsonl").read_text()
    for key in ("pairs_by_category", "unpaired_by_reason", "samples_by_class", "complete"):
        assert resumed[key] == whole[key], key


def test_a_larger_limit_extends_the_pairs(tmp_path):
    run(tmp_path / "p.jsonl", items=examples()[:2])
    model = ScriptedSampler()
    summary = run(tmp_path / "p.jsonl", model)
    assert len(model.calls) == 3
    assert (summary["questions_done"], summary["pairs"]) == (7, 4)


def test_a_rerun_with_other_settings_is_refused_naming_what_changed(tmp_path):
    run(tmp_path / "p.jsonl", items=examples()[:1])
    before = (tmp_path / "p.jsonl").read_text()
    with pytest.raises(TunixError, match=r"^--out \S+p\.jsonl is a pairs file made with other "
                                         r"settings \(sampling\.samples: 3 -> 2\)"):  # fmt: skip
        run(tmp_path / "p.jsonl", config=settings(samples=2))
    assert (tmp_path / "p.jsonl").read_text() == before


@pytest.mark.parametrize("existing", ["p.jsonl", "p.questions.jsonl"])
def test_an_out_that_is_not_a_pairs_file_is_refused_and_kept(tmp_path, existing):
    (tmp_path / existing).write_text('{"id": "mine"}\n')
    model = ScriptedSampler()
    with pytest.raises(TunixError, match=rf"found {existing} but no p\.summary\.json: it is not "
                                         r"a pairs file this command can continue"):  # fmt: skip
        run(tmp_path / "p.jsonl", model)
    assert model.calls == []
    assert (tmp_path / existing).read_text() == '{"id": "mine"}\n'
    assert not (tmp_path / "p.summary.json").exists()


def test_a_distillation_manifest_is_not_a_pairs_summary(tmp_path):
    (tmp_path / "p.summary.json").write_text(json.dumps({"manifest_version": 1}))
    with pytest.raises(TunixError, match=r"p\.summary\.json: not a manifest this command writes "
                                         r"\(it has no pairs_version 1\)"):  # fmt: skip
        run(tmp_path / "p.jsonl")


def test_fewer_than_two_samples_and_an_out_not_jsonl_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"^--samples: must be at least 2 \(a pair needs two "
                                          r"answers\), got 1$"):  # fmt: skip
        settings(samples=1)
    with pytest.raises(ConfigError, match=r"^--out \S+pairs\.txt: must name a \.jsonl file"):
        run(tmp_path / "pairs.txt")
