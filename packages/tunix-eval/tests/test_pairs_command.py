"""``tunix pairs`` end to end: with a stand-in sampler behind a backend plugin (a run's
model and a preset, the printed summary, the files the preference loader reads, bad input),
and with the tiny random Gemma 3 of the real ``jax`` backend (a run's exported model, and
a resume after an interruption that writes what an uninterrupted run writes)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from tunix_core.config import RunConfig, unstructure_config
from tunix_core.errors import ConfigError
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import plugin_module
from tunix_core.protocols import ModelSpec
from tunix_core.rundir import RunDirectory
from tunix_jax.rl.preference.data import load_pairs

from .conftest import SamplingOnly, make_host, make_invoker

_QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")
# arith's train sums -> what the K samples are, cycled: Right, Wrong, Broken, Empty.
DRAWS = {3: "RR", 7: "RW", 11: "BR", 15: "WW", 4: "RR", 18: "BE"}


class PairSampler(SamplingOnly):
    """Answers each arith question by DRAWS; records the prompts and sampling settings."""

    def __init__(self, source: str) -> None:
        self.source = source

    def sample(self, prompts: Sequence[str], *, max_new_tokens: int, temperature: float,
               top_p: float, seed: int) -> list[str]:  # fmt: skip
        SamplerBackend.calls.append({"model": self.source, "prompts": list(prompts),
                                     "max_new_tokens": max_new_tokens})  # fmt: skip
        drawn: dict[str, int] = {}
        completions = []
        for prompt in prompts:
            a, b = map(int, _QUESTION.search(prompt).groups())
            index = drawn[prompt] = drawn.get(prompt, -1) + 1
            kind = DRAWS[a + b][index % len(DRAWS[a + b])]
            answer = a + b if kind == "R" else a + b + 1
            completions.append({"R": f"<reasoning>{a} plus {b} is {answer}.</reasoning>"
                                     f"<answer>{answer}</answer>",
                                "W": f"<reasoning>{a} and {b} make {answer}.</reasoning>"
                                     f"<answer>{answer}</answer>",
                                "B": f"{a + b}, I think", "E": ""}[kind])  # fmt: skip
        return completions


class SamplerBackend:
    name = "jax"
    calls: ClassVar[list[dict[str, Any]]] = []

    def validate(self, spec: ModelSpec) -> None:
        if spec.preset != "tiny":
            raise ConfigError(f"model.preset: unknown preset {spec.preset!r}")

    def load(self, spec: ModelSpec, *, progress: Any) -> PairSampler:
        SamplerBackend.calls.append({"load": spec.preset})
        return PairSampler("preset")

    def export_problems(self, directory: Path) -> list[str]:
        return []

    def load_export(self, directory: Path, spec: ModelSpec, *, progress: Any) -> PairSampler:
        SamplerBackend.calls.append({"load_export": directory})
        return PairSampler("run")


@hookimpl
def _register_backends(registry: Any) -> None:
    registry.register("jax", f"{__name__}:SamplerBackend")


def make_run(root: Path, *, system_prompt: str = "Be brief.", new_tokens: int = 32) -> Path:
    """A run directory whose config names the tiny preset and its own prompt and length,
    and whose model/ the backend loads."""
    run = RunDirectory.create(root, "sft", model_id="tiny@random", dataset="arith",
                              trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip
    config = unstructure_config(RunConfig())
    config["model"].update(preset="tiny-gemma3", weights="random")
    config["dataset"]["system_prompt"] = system_prompt
    config["eval"]["max_new_tokens"] = new_tokens
    run.config_path.write_text(yaml.safe_dump(config))
    return run.path


@pytest.fixture
def pairs(tmp_path):
    SamplerBackend.calls.clear()
    invoke = make_invoker(
        make_host(plugin_module("sampler", tunix_register_backends=_register_backends))
    )
    # Options given again in ARGS win: click keeps the last value.
    return lambda *args: invoke("pairs", "--dataset", "arith", "-k", "2", *args)


def test_pairs_from_a_run_are_counted_printed_and_read_by_the_preference_loader(pairs, tmp_path):
    run = make_run(tmp_path / "runs")
    (run / "model").mkdir()
    (run / "model" / "model_config.json").write_text("{}")
    out = tmp_path / "pairs.jsonl"

    result = pairs(run, "--out", out)

    assert result.exit_code == 0, result.output
    printed = result.stdout.splitlines()
    assert printed[0] == ("2 pairs from 6 questions (answer: 1, format: 1); 4 without a pair "
                          "(all_correct: 2, all_wrong: 1, all_broken: 1)")  # fmt: skip
    assert printed[1].startswith(
        "  12 samples (accepted: 6, wrong_answer: 3, broken_format: 2, empty: 1); "
    )
    assert printed[2] == f"  written to {out} (summary {tmp_path / 'pairs.summary.json'})"
    assert "[pairs] batch 1/2: 2 pair(s) from 4 question(s)" in result.stderr
    # The run's model answers, with the run's system prompt and answer length.
    samples = [call for call in SamplerBackend.calls if "prompts" in call]
    assert {call["model"] for call in samples} == {"run"}
    assert all("Be brief." in prompt for call in samples for prompt in call["prompts"])
    assert {call["max_new_tokens"] for call in samples} == {32}
    loaded = load_pairs(str(out), "Be brief.")
    assert [(pair.prompt.count("What is 3 + 4?"), pair.rejected) for pair in loaded] == [
        (1, "<reasoning>3 and 4 make 8.</reasoning><answer>8</answer><end_of_turn>"),
        (0, "11, I think<end_of_turn>"),
    ]
    summary = json.loads((tmp_path / "pairs.summary.json").read_text())
    assert summary["settings"]["model"] == {"run": str(run.resolve()), "backend": "jax",
                                            "model_id": "tiny-gemma3@random"}  # fmt: skip
    assert summary["settings"]["sampling"]["system_prompt"] == "Be brief."


def test_a_preset_answers_with_the_default_prompt_and_the_flags_win(pairs, tmp_path):
    result = pairs("tiny", "--out", tmp_path / "p.jsonl", "--max-new-tokens", "7",
                   "--system-prompt", "")  # fmt: skip

    assert result.exit_code == 0, result.output
    assert SamplerBackend.calls[0] == {"load": "tiny"}
    assert {call["max_new_tokens"] for call in SamplerBackend.calls[1:]} == {7}
    settings = json.loads((tmp_path / "p.summary.json").read_text())["settings"]
    assert settings["model"] == {"backend": "jax", "preset": "tiny", "weights": "default",
                                 "model_id": "tiny@default"}  # fmt: skip
    assert settings["sampling"]["system_prompt"] == ""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tiny", "--dataset", "nope"], 1, r"^Error: --dataset nope: Unknown dataset 'nope'"),
        (["tiny", "-k", "1"], 2, r"^Error: --samples: must be at least 2 \(a pair needs two answers\), got 1$"),
        (["giant"], 2, r"^Error: RUN_OR_MODEL: unknown preset 'giant'$"),
        (["runs/none"], 1, r"^Error: RUN_OR_MODEL runs/none: no such run directory$"),
        (["tiny", "--backend", "torch"], 2, r"^Error: --backend: Unknown model backend 'torch'"),
        (["tiny", "--out", "{tmp}/p.txt"], 2, r"^Error: --out \S+p\.txt: must name a \.jsonl file"),
        (["tiny", "--out", "{tmp}/mine.jsonl"], 1,
         r"^Error: --out \S+mine\.jsonl: found mine\.jsonl but no mine\.summary\.json: it is not a "
         r"pairs file this command can continue; choose another --out$"),
        (["{run}", "--weights", "random"], 2, r"--weights and --backend go with a model preset"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_loads_no_model(pairs, tmp_path, args, code, message):
    (tmp_path / "mine.jsonl").write_text('{"prompt": "mine"}\n')
    run = make_run(tmp_path / "runs")
    args = [arg.format(tmp=tmp_path, run=run) for arg in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "p.jsonl")]

    result = pairs(*args)

    assert result.exit_code == code, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert re.search(message, line), result.output
    assert [call for call in SamplerBackend.calls if "load" in call or "load_export" in call] == []
    assert (tmp_path / "mine.jsonl").read_text() == '{"prompt": "mine"}\n'
    assert not (tmp_path / "p.jsonl").exists() and not (tmp_path / "p.summary.json").exists()


def test_a_run_without_a_trained_model_is_named(pairs, tmp_path):
    run = make_run(tmp_path / "runs")
    result = pairs(run, "--out", tmp_path / "p.jsonl")
    assert result.exit_code == 1
    assert f"Error: {run} has no trained model yet" in result.output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory whose model/ is the tiny random Gemma 3, exported by the jax backend."""
    from tunix_jax.backend import JaxBackend

    backend = JaxBackend()
    model = backend.load(ModelSpec("tiny-gemma3", "random", seed=7), progress=print)
    run = make_run(tmp_path_factory.mktemp("runs"), new_tokens=4)
    backend.export(model, run / "model")
    return run


def test_a_resumed_run_with_the_tiny_model_writes_what_an_uninterrupted_one_writes(
    jax_invoke, tiny_run, tmp_path
):
    def pairs(out: Path, limit: int) -> Any:
        return jax_invoke("pairs", tiny_run, "--dataset", "arith", "-k", "2", "--batch-size", "2",
                          "--limit", limit, "--out", out)  # fmt: skip

    whole = pairs(tmp_path / "whole.jsonl", 4)
    assert whole.exit_code == 0, whole.output
    # Interrupted after the first batch, in the middle of the second batch's log line.
    cut = tmp_path / "cut.jsonl"
    assert pairs(cut, 2).exit_code == 0
    log = tmp_path / "cut.questions.jsonl"
    log.write_text(
        log.read_text() + (tmp_path / "whole.questions.jsonl").read_text().splitlines()[2][:30]
    )

    resumed = pairs(cut, 4)

    assert resumed.exit_code == 0, resumed.output
    assert "2 already done" in resumed.stderr
    assert log.read_text() == (tmp_path / "whole.questions.jsonl").read_text()
    assert cut.read_text() == (tmp_path / "whole.jsonl").read_text()
    first, second = (
        json.loads((tmp_path / f"{name}.summary.json").read_text()) for name in ("whole", "cut")
    )
    for key in ("pairs_by_category", "unpaired_by_reason", "samples_by_class", "questions_done"):
        assert first[key] == second[key], key
    # Random weights write no format: every one of the 8 samples is broken (or empty).
    assert first["samples"] == 8 and first["unpaired_by_reason"]["all_broken"] == 4
