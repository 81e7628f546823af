"""A run that also evaluated its dataset's ood split shows it beside the eval split, with
its standard errors: in `tunix compare`, `tunix runs show` and the HTML report."""

from __future__ import annotations

import json
import re

from tunix_core.evaluation import score_predictions, split_result
from tunix_core.jsonio import write_json_atomic
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval import compare as comparing
from tunix_eval.report_html import gather, render_html


def add_ood(folder, right: int, items: int = 4) -> None:
    """Score an ood evaluation into ``folder/ood`` (``right`` of ``items`` correct) and
    report it in ``folder``'s summary, as a run's evaluation does."""
    completions = [
        f"<reasoning>r</reasoning><answer>{int(i < right)}</answer>" for i in range(items)
    ]
    predictions = [Prediction(f"o{i}", "", text, "1") for i, text in enumerate(completions)]
    ood = score_predictions(predictions, [], label="ood", out_dir=folder / "ood",
                            context=RunContext(get_host()))  # fmt: skip
    summary = json.loads((folder / "eval_summary.json").read_text())
    summary["splits"] = {"ood": split_result(ood, folder / "ood", folder)}
    write_json_atomic(folder / "eval_summary.json", summary)


def test_compare_reports_the_ood_split_and_its_standard_error(report_run, tmp_path):
    run = report_run(tmp_path)
    add_ood(run.baseline_dir, right=1)
    add_ood(run.path, right=3)
    result = comparing.compare(comparing.load(run.baseline_dir), comparing.load(run.path))
    rows = {name: (before, after) for name, before, after, _ in result.rows}
    assert rows["ood: answer_accuracy"] == (0.25, 0.75)
    names = [name for name, *_ in result.rows]
    assert names[:4] == ["answer_accuracy", "format_compliance", "ood: answer_accuracy",
                         "ood: format_compliance"]  # fmt: skip
    text = comparing.format_comparison(result)
    assert "(ood answer accuracy standard error: ± 21.7% before, ± 21.7% after;" in text
    assert "(answer accuracy standard error:" in text
    data = comparing.comparison_to_dict(result)
    assert data["answer_accuracy_stderr"]["after"]["ood"] == (0.75 * 0.25 / 4) ** 0.5


def test_runs_show_and_the_report_show_the_ood_split(invoke, report_run, tmp_path):
    run = report_run(tmp_path)
    add_ood(run.baseline_dir, right=0)
    add_ood(run.path, right=2)
    out = invoke("runs", "show", run.path).stdout
    assert re.search(r"ood: answer_accuracy\s+0\.0%\s+50\.0%\s+\+50\.0 pt", out), out
    assert re.search(r"answer accuracy standard error \(final\): eval ± \S+%, ood ± 25\.0%", out)
    html = render_html(gather(run.path))
    assert "ood: answer_accuracy" in html and "ood: items" in html
    assert "(± 25.0% on ood)" in html


def test_an_evaluation_without_ood_shows_no_ood_rows(report_run, tmp_path):
    run = report_run(tmp_path)
    result = comparing.compare(comparing.load(run.baseline_dir), comparing.load(run.path))
    assert not any(name.startswith("ood") for name, *_ in result.rows)
    assert "ood answer accuracy" not in comparing.format_comparison(result)
