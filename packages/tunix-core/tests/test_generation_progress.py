"""What the evaluation loop and the dataset stage say while they work: a line per batch
with the rate and the ETA when stderr is not a terminal, a tqdm bar when it is."""

from __future__ import annotations

import io
import re
import sys
import types
from collections.abc import Sequence

import pytest

from tunix_core.config import structure_config
from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.evaluation import evaluate_examples, generation_progress
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import AnswerOptions, AnswerVerdict, RunContext
from tunix_core.rundir import RunDirectory
from tunix_core.stages import write_dataset


def exact(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    return AnswerVerdict(answer.strip() == expected, "exact")


@hookimpl
def _register_checks(registry):
    registry.register("auto", f"{__name__}:exact")


def checks_host():
    host = PluginHost()
    host.add_plugin(plugin_module("checks", tunix_register_answer_checks=_register_checks),
                    "checks", "tunix-test-checks")  # fmt: skip
    host.fill_registries()
    return host


EXAMPLES = [
    ReasoningExample(f"q{i}", f"What is {i} + 1?", ("add one",), str(i + 1),
                     ExampleMeta(category="arithmetic", section="core", difficulty="easy"))
    for i in range(5)
]  # fmt: skip


class RightAnswers:
    """Reads ``n`` out of "What is n + 1?" and answers n + 1."""

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        numbers = [int(p.split(" + 1?")[0].rsplit(" ", 1)[1]) for p in prompts]
        return [f"<reasoning>r</reasoning><answer>{n + 1}</answer>" for n in numbers]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def evaluate(tmp_path, messages: list[str]) -> dict:
    return evaluate_examples(RightAnswers(), EXAMPLES, [], system_prompt="Solve.", max_new_tokens=32,
                             batch_size=2, out_dir=tmp_path, label="baseline",
                             progress=messages.append, context=RunContext(checks_host()))  # fmt: skip


def test_without_a_terminal_each_batch_is_one_line_with_rate_and_eta(tmp_path, monkeypatch):
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    messages: list[str] = []
    evaluate(tmp_path, messages)
    assert messages[0] == ("[baseline] generating 5 completion(s) in 3 batch(es) of up to 2, "
                           "at most 32 new tokens each")  # fmt: skip
    batch_lines = [m for m in messages if " generated " in m]
    rate = r"\d+\.\d\d items/s"
    assert [re.sub(rate, "R", m) for m in batch_lines] == [
        "[baseline] generated 2/5 (R, ETA 0 s)",
        "[baseline] generated 4/5 (R, ETA 0 s)",
        "[baseline] generated 5/5 (R, took 0 s)",
    ]
    assert stderr.getvalue() == ""  # no bar and no carriage returns in a log


def test_on_a_terminal_a_bar_replaces_the_batch_lines(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    messages: list[str] = []
    summary = evaluate(tmp_path, messages)
    assert summary["counts"]["correct"] == 5
    assert not any(" generated " in m for m in messages)
    bar = terminal.getvalue()
    assert "baseline: 100%" in bar and "5/5" in bar and "item/s" in bar


def test_nothing_to_generate_shows_no_bar(tmp_path, monkeypatch):
    evaluate(tmp_path, [])  # every completion is on disk now
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    messages: list[str] = []
    evaluate(tmp_path, messages)
    assert terminal.getvalue() == ""
    assert messages[0].startswith("[baseline] reusing 5 completion(s)")


@pytest.mark.parametrize(
    ("finished", "total", "elapsed", "line"),
    [
        (16, 48, 8.0, "[baseline] generated 16/48 (2.00 items/s, ETA 16 s)"),
        (1, 48, 3.0, "[baseline] generated 1/48 (0.33 items/s, ETA 2 min 21 s)"),
        (48, 48, 100.0, "[baseline] generated 48/48 (0.48 items/s, took 1 min 40 s)"),
    ],
)
def test_a_progress_line(finished, total, elapsed, line):
    assert generation_progress("baseline", finished, total, elapsed) == line


def test_the_dataset_stage_says_what_it_wrote(tmp_path):
    run = RunDirectory.create(tmp_path, "unit-run", model_id="tiny-gemma3@random", dataset="unit",
                              trainer="jax", config_path=None, command=["pytest"])  # fmt: skip
    plan = types.SimpleNamespace(config=structure_config({"dataset": {"name": "unit"}}),
                                 train_examples=EXAMPLES[:3], eval_examples=EXAMPLES[3:],
                                 dataset_parts={}, ood_examples=[])  # fmt: skip
    messages: list[str] = []
    detail = write_dataset(run, plan, messages.append)
    assert detail.train_items == 3 and detail.eval_items == 2
    [message] = messages
    assert re.fullmatch(rf"\[dataset\] unit: 3 training and 2 evaluation item\(s\) written to "
                        rf"{re.escape(str(run.data_dir))} in \d+\.\d\ds", message)  # fmt: skip
