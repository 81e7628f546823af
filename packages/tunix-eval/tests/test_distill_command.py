"""``tunix distill`` end to end with a stand-in teacher (and judge) behind a backend plugin:
the files it writes, the judge for categories without a checkable reference, its errors,
and that ``tunix run --dataset jsonl:<distilled>`` accepts what it wrote."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import pytest

from tunix_core.data.record import read_jsonl
from tunix_core.errors import ConfigError
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import plugin_module

from .conftest import ArithmeticModel, make_host, make_invoker

_QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")


class SamplingArithmeticModel(ArithmeticModel):
    """Draws K answers per question: every sample of a sum under 10 is right; of a larger
    sum, the first sample of each call is right and the others one too many. Judge prompts
    are graded literally (ArithmeticModel)."""

    def sample(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float,
               top_p: float, seed: int) -> list[str]:  # fmt: skip
        drawn: dict[str, int] = {}
        completions = []
        for prompt in prompts:
            a, b = map(int, _QUESTION.search(prompt).groups())
            index = drawn[prompt] = drawn.get(prompt, -1) + 1
            total = a + b if a + b < 10 or index == 0 else a + b + 1
            completions.append(f"<reasoning>{a} plus {b} (try {index}) is {total}."
                               f"</reasoning><answer>{total}</answer>")  # fmt: skip
        return completions


class TeacherBackend:
    name = "jax"

    def validate(self, spec: Any) -> None:
        if spec.preset not in ("tiny", "critic"):
            raise ConfigError(f"model.preset: unknown preset {spec.preset!r}")

    def load(self, spec: Any, *, progress: Any) -> SamplingArithmeticModel:
        return SamplingArithmeticModel(trained=False)


@hookimpl
def _register_backends(registry: Any) -> None:
    registry.register("jax", f"{__name__}:TeacherBackend")


@pytest.fixture
def distill():
    host = make_host(plugin_module("teacher", tunix_register_backends=_register_backends))
    invoke = make_invoker(host)
    return lambda *args: invoke("distill", "--dataset", "arith", "--teacher-preset", "tiny",
                                "-k", "3", "--batch-size", "4", *args)  # fmt: skip


def test_distill_keeps_checked_samples_and_reports_per_category(distill, tmp_path):
    result = distill("--out", tmp_path)

    assert result.exit_code == 0, result.output
    # arith's train split: small sums (3 questions, all 9 samples right) and large ones
    # (3 questions, only the first of 3 samples right).
    assert "kept 12 of 18 samples (66.7%); 6 of 6 questions have at least one" in result.output
    assert "  large: kept 3/9 samples, 3/3 questions" in result.output
    assert "  small: kept 9/9 samples, 3/3 questions" in result.output
    assert "[distill] batch 2/2: kept 4/6 sample(s)" in result.output
    records = read_jsonl(tmp_path / "distilled.jsonl")
    assert len(records) == 12
    assert records[0].reasoning == "1 plus 2 (try 0) is 3." and records[0].answer == "3"
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["settings"]["teacher"]["model_id"] == "tiny@default"
    assert manifest["settings"]["sampling"]["samples"] == 3
    assert manifest["settings"]["judge"] is None


def test_the_judge_decides_the_categories_it_is_given(distill, tmp_path):
    result = distill("--out", tmp_path, "--judge-model", "critic", "--judge-category", "large")

    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["settings"]["judge"] == {
        "backend": "jax", "preset": "critic", "weights": "default", "model_id": "critic@default",
        "min_score": 4, "categories": ["large"],
    }  # fmt: skip
    # The literal judge scores the right large sums 5 and the wrong ones 1.
    assert manifest["verdicts"]["kept"] == 12
    assert manifest["verdicts"]["judge_rejected"] == 6
    assert manifest["verdicts"]["wrong_answer"] == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-k", "0"], 2, r"Error: --samples: must be at least 1, got 0"),
        (["--top-p", "1.5"], 2, r"Error: --top-p: must be in \(0, 1\], got 1.5"),
        (["--dataset", "nope"], 1, r"Error: --dataset nope: Unknown dataset 'nope'"),
        (["--teacher-preset", "giant"], 2, r"Error: --teacher-preset: unknown preset 'giant'"),
        (["--backend", "torch"], 2, r"Error: --backend: Unknown model backend 'torch'"),
        (["--judge-model", "giant", "--judge-category", "large"], 2,
         r"Error: --judge-model: unknown preset 'giant'"),
        (["--judge-category", "large"], 2, r"--judge-category needs --judge-model"),
        (["--judge-model", "critic"], 2, r"--judge-model needs --judge-category"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_option(distill, tmp_path, args, code, message):
    result = distill("--out", tmp_path / "out", *args)

    assert result.exit_code == code, result.output
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "out").exists()


def test_a_run_trains_on_the_distilled_file(distill, tmp_path):
    from tunix_core import api
    from tunix_core.plugins import get_host

    assert distill("--out", tmp_path / "d").exit_code == 0
    lines: list[str] = []
    run = api.run(overrides=["dataset.name=jsonl:" + str(tmp_path / "d" / "distilled.jsonl"),
                             "dataset.options.eval_fraction=0.25", "model.preset=tiny-gemma3",
                             "model.weights=random", f"run.output_dir={tmp_path / 'runs'}",
                             "package.enabled=false"],
                  stop_after="dataset", echo=lines.append, host=get_host())  # fmt: skip

    train = read_jsonl(run / "data" / "train.jsonl")
    evaluation = read_jsonl(run / "data" / "eval.jsonl")
    assert len(train) + len(evaluation) == 12
    assert {r.meta.source for r in train} == {"distilled by tiny@default from arith"}


def test_files_are_read_by_the_builtin_providers_and_every_item_needs_an_installed_check(
    tmp_path,
):
    import tunix_eval.plugin
    from tunix_core.plugins import PluginHost

    # The jsonl: provider, from the installed tunix-datasets (this package never imports it).
    (datasets,) = metadata.entry_points(group="tunix", name="datasets")
    host = PluginHost()
    host.add_plugin(datasets.load(), "datasets", "tunix-datasets")
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")
    host.add_plugin(plugin_module("teacher", tunix_register_backends=_register_backends),
                    "teacher", "tunix-teacher-test")  # fmt: skip
    host.fill_registries()
    invoke = make_invoker(host)
    questions = tmp_path / "poems.jsonl"
    questions.write_text(json.dumps({
        "id": "p1", "question": "Write a line about rain.", "reasoning": "an example",
        "answer": "Rain taps the roof.", "meta": {"category": "poem", "answer_match": "rhyme"},
    }) + "\n")  # fmt: skip
    base = ["distill", "--teacher-preset", "tiny", "--out", tmp_path / "out"]

    missing = invoke(*base, "--dataset", "jsonl:nowhere.jsonl")
    assert "Error: --dataset jsonl:nowhere.jsonl: nowhere.jsonl: cannot read: no such file" in missing.output
    # The judge decides poems, but it reports its verdicts beside the item's answer check.
    unknown = invoke(*base, "--dataset", f"jsonl:{questions}", "--judge-model", "critic",
                     "--judge-category", "poem")  # fmt: skip
    assert unknown.exit_code == 1
    assert f"Error: --dataset jsonl:{questions}: item 'p1': meta.answer_match: " in unknown.output
    assert "'rhyme'" in unknown.output
    assert not (tmp_path / "out").exists()
