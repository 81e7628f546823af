"""The judging-mix results, per domain and overall with their standard errors, in
``tunix compare`` (text and ``--json``), ``tunix eval``'s printout, ``tunix runs show`` and
the HTML report; an evaluation without a judge says that its open items report only the
reference-free checks.

The evaluations are made by the commands themselves (``tunix eval --model`` and ``tunix
eval --run RUN --dataset judging-mix``, with and without ``--judge-model``) on the real
judging-mix suite. The model is a stand-in that answers each item as planted below, and
also judges: what is under test is the scoring, the summaries and their display. The
expected figures are worked out here from the plan, not read from the summaries.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from typing import Any

import pytest
import yaml

from tunix_core.config import structure_config, unstructure_config
from tunix_core.data.loading import load_split
from tunix_core.hookspecs import hookimpl
from tunix_core.layout import EVAL_SUMMARY
from tunix_core.plugins import PluginHost, get_host, plugin_module
from tunix_eval.judging_mix import NO_JUDGE, NO_JUDGE_NOTE
from tunix_eval.report_html import gather, render_html

from .conftest import build_report_run, make_invoker
from .test_report_html import parse

SUITE = load_split(get_host().datasets, "judging-mix", "eval", seed=0, options={}, limit=None,
                   transforms=get_host().transforms)  # fmt: skip
OPEN_SECTION = "open"
GOOD, WEAK, UNCLEAR = "PLANTED-GOOD", "PLANTED-WEAK", "PLANTED-UNCLEAR"
EMPTY_REASONING_ID = "jm-math-01"  # the trained model leaves its reasoning empty
BACKEND = "planted"  # the stand-in's model backend, beside the installed ones


def plan(item_id: str) -> str:
    """What the trained model writes into an open item's answer, and so the judge's
    verdict on it: GOOD scores 4, WEAK 2, UNCLEAR gets a reply without a score."""
    number = int(item_id.rsplit("-", 1)[1])
    return UNCLEAR if number % 5 == 0 else GOOD if number % 2 else WEAK


def domain_items(domain: str) -> list[Any]:
    return [item for item in SUITE if item.meta.category == domain]


class PlantedModel:
    """Answers each judging-mix prompt as planned (untrained: never right), and judges."""

    def __init__(self, trained: bool) -> None:
        self.trained = trained

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        return [self.reply(prompt) for prompt in prompts]

    def reply(self, prompt: str) -> str:
        if "open task against its rubric" in prompt:
            return "SCORE: 4" if GOOD in prompt else "SCORE: 2" if WEAK in prompt else "Unsure."
        if "You are grading" in prompt:
            return "SCORE: 5"
        [item] = [item for item in SUITE if item.question in prompt]
        if not self.trained:
            return "<reasoning>I am not sure.</reasoning><answer>no idea</answer>"
        answer = plan(item.id) if item.meta.section == OPEN_SECTION else item.answer
        reasoning = " " if item.id == EMPTY_REASONING_ID else "I worked through it step by step."
        return f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


class PlantedBackend:
    name = BACKEND

    def validate(self, spec: Any) -> None:
        pass

    def load(self, spec: Any, *, progress: Any) -> PlantedModel:
        return PlantedModel(trained=False)

    def load_export(self, directory: Any, spec: Any, *, progress: Any) -> PlantedModel:
        return PlantedModel(trained=True)


@hookimpl
def _register_backends(registry):
    registry.register(BACKEND, f"{__name__}:PlantedBackend", description="planted answers")


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory) -> dict[str, Any]:
    """A run with two judging-mix evaluations of its model (judged, and not), and the
    untrained model's evaluation (not judged), each made by `tunix eval`."""
    host = PluginHost()
    host.load_entry_points()  # the installed plugins: the judging-mix suite among them
    host.add_plugin(plugin_module("planted", tunix_register_backends=_register_backends),
                    BACKEND, "tunix-planted-test")  # fmt: skip
    host.fill_registries()
    invoke = make_invoker(host)
    root = tmp_path_factory.mktemp("judging-mix")
    run = build_report_run(root)
    config = structure_config({"dataset": {"name": "arith"},
                               "model": {"preset": "stand-in", "backend": BACKEND}})  # fmt: skip
    run.config_path.write_text(yaml.safe_dump(unstructure_config(config)))
    judge = ("--judge-model", "stand-in", "--judge-weights", "random", "--judge-backend", BACKEND)
    commands = {
        "base": ("eval", "--model", "stand-in", "--weights", "random", "--backend", BACKEND,
                 "--dataset", "judging-mix", "--out", root / "base"),
        "judged": ("eval", "--run", run.path, "--dataset", "judging-mix", *judge),
        "unjudged": ("eval", "--run", run.path, "--dataset", "judging-mix",
                     "--out", run.evals_dir / "unjudged"),
    }  # fmt: skip
    printed = {}
    for name, args in commands.items():
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        printed[name] = result.stdout
    return {"invoke": invoke, "run": run, "base": root / "base", "printed": printed,
            "judged": run.evals_dir / "judging-mix", "unjudged": run.evals_dir / "unjudged"}  # fmt: skip


def rate_cell(hits: int, n: int) -> str:
    share = hits / n
    return f"{100 * share:.1f}% ± {100 * math.sqrt(share * (1 - share) / n):.1f}%"


def rubric_cells(domain: str) -> tuple[str, str]:
    """The mean score and pass-rate cells the plan gives a domain's open items."""
    verdicts = [plan(item.id) for item in domain_items(domain)
                if item.meta.section == OPEN_SECTION]  # fmt: skip
    scores = [4 if verdict == GOOD else 2 for verdict in verdicts if verdict != UNCLEAR]
    stderr = statistics.stdev(scores) / math.sqrt(len(scores))
    mean = f"{statistics.fmean(scores):.2f} ± {stderr:.2f}"
    return mean, rate_cell(sum(s >= 3 for s in scores), len(scores))


def test_compare_shows_each_domain_and_the_rubric_with_standard_errors(evaluations):
    invoke = evaluations["invoke"]
    result = invoke("compare", evaluations["base"], evaluations["judged"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    math_items = len(domain_items("math"))
    # Verifiable items: nothing right untrained, everything right trained.
    zero, full = rate_cell(0, math_items), rate_cell(math_items, math_items)
    assert re.search(rf"math: answer_accuracy\s+{re.escape(zero)}\s+{re.escape(full)}\s+"
                     r"\+100\.0 pt ± 0\.0 pt", text), text  # fmt: skip
    # Open items: no judge before, the judge's rubric scores after.
    mean, passed = rubric_cells("creative_writing")
    assert re.search(rf"creative_writing: rubric\.mean_score\s+{NO_JUDGE}\s+{re.escape(mean)}\n",
                     text), text  # fmt: skip
    assert re.search(rf"creative_writing: rubric\.passed\s+{NO_JUDGE}\s+{re.escape(passed)}\n",
                     text)  # fmt: skip
    flagged = rate_cell(1, math_items)
    assert re.search(rf"math: reference_free_flagged\.empty_reasoning\s+{re.escape(zero)}\s+"
                     rf"{re.escape(flagged)}", text)  # fmt: skip
    for domain in ("overall", *{item.meta.category for item in SUITE}):
        assert f"\n  {domain}: strict_format " in text
    assert f"note (before): {NO_JUDGE_NOTE}" in text
    assert f"note (after): {NO_JUDGE_NOTE}" not in text

    data = json.loads(
        invoke("compare", evaluations["base"], evaluations["judged"], "--json").stdout
    )
    rows = {(row["group"], row["metric"]): row for row in data["judging_mix"]}
    row = rows[("creative_writing", "rubric.mean_score")]
    assert row["before"] is None and f"{row['after']:.2f} ± {row['after_stderr']:.2f}" == mean
    row = rows[("math", "answer_accuracy")]
    assert (row["before"], row["after"], row["change"], row["change_stderr"]) == (0, 1, 1, 0)
    assert data["judging_mix_notes"]["before"] == [NO_JUDGE_NOTE]


def test_eval_prints_each_domain_and_says_when_no_judge_ran(evaluations):
    judged, unjudged = evaluations["printed"]["judged"], evaluations["printed"]["unjudged"]
    mean, passed = rubric_cells("ideation")
    assert re.search(rf"\n\s+ideation\s+\d+\s+\d+\s+.*{re.escape(mean)}\s+{re.escape(passed)}",
                     judged)  # fmt: skip
    assert NO_JUDGE_NOTE not in judged
    assert re.search(rf"\n\s+ideation\s+\d+\s+\d+\s+.*{NO_JUDGE}\s+{NO_JUDGE}", unjudged)
    assert f"note: {NO_JUDGE_NOTE}" in unjudged
    assert "reference-free checks: share flagged" in unjudged and "empty_reasoning" in unjudged


def test_the_report_and_runs_show_show_each_judging_mix_evaluation(evaluations):
    run = evaluations["run"]
    page = parse(render_html(gather(run.path)))
    section = page.text["judging-mix"]
    judged_at = section.index(f"evals/judging-mix/{EVAL_SUMMARY}")
    unjudged_at = section.index(f"evals/unjudged/{EVAL_SUMMARY}")
    judged = section[judged_at:unjudged_at] if judged_at < unjudged_at else section[judged_at:]
    unjudged = section[unjudged_at:] if judged_at < unjudged_at else section[unjudged_at:judged_at]
    mean, passed = rubric_cells("summarisation")
    assert "summarisation" in judged and mean in judged and passed in judged
    assert NO_JUDGE_NOTE not in judged
    assert f"Note: {NO_JUDGE_NOTE}" in unjudged and NO_JUDGE in unjudged
    math_items = len(domain_items("math"))
    assert rate_cell(1, math_items) in judged  # the empty reasoning, among the math items
    assert list(page.text).index("judging-mix") == list(page.text).index("flipped") - 1

    shown = evaluations["invoke"]("runs", "show", run.path).stdout
    assert f"judging-mix in evals/judging-mix/{EVAL_SUMMARY}:" in shown
    assert re.search(rf"\n\s+summarisation\s+\d+\s+\d+\s+.*{re.escape(mean)}\s+"
                     rf"{re.escape(passed)}", shown)  # fmt: skip
    assert f"note: {NO_JUDGE_NOTE}" in shown


def test_a_run_without_judging_mix_results_has_no_such_section(report_run, tmp_path):
    run = report_run(tmp_path)
    assert "judging-mix" not in parse(render_html(gather(run.path))).text


def test_a_judge_evaluator_beside_an_unjudged_scorecard_gives_its_rubric_figures(
    evaluations, monkeypatch, tmp_path
):
    """As `tunix run` evaluates with `judge` configured by TUNIX_JUDGE_*: the scorecard
    itself has no rubric, the `judge` evaluator beside it does; the displays show the
    judge's figures and do not say that no judge ran."""
    for field, value in (("BACKEND", BACKEND), ("PRESET", "stand-in"), ("WEIGHTS", "random")):
        monkeypatch.setenv(f"TUNIX_JUDGE_{field}", value)
    run, out = evaluations["run"], tmp_path / "judge-beside"
    evaluators = [arg for name in ("format", "accuracy", "judging-mix", "judge")
                  for arg in ("--evaluator", name)]  # fmt: skip
    result = evaluations["invoke"]("eval", "--run", run.path, "--dataset", "judging-mix",
                                   "--out", out, *evaluators)  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / EVAL_SUMMARY).read_text())
    assert NO_JUDGE_NOTE in summary["evaluators"]["judging-mix"]["notes"]  # as written
    mean, passed = rubric_cells("creative_writing")
    assert re.search(rf"\n\s+creative_writing\s+\d+\s+\d+\s+.*{re.escape(mean)}\s+"
                     rf"{re.escape(passed)}", result.stdout)  # fmt: skip
    assert NO_JUDGE_NOTE not in result.stdout and NO_JUDGE not in result.stdout
