"""README_SUBMISSION.md's scores: every evaluated split, before and after, from the summaries."""

from __future__ import annotations

from typing import Any

from tunix_package.readme import ReadmeFacts, render_readme, split_scores


def _summary(accuracy: float, stderr: float, form: float, ood: dict[str, Any] | None) -> dict:
    summary: dict[str, Any] = {
        "primary_score": accuracy,
        "counts": {"items": 200},
        "evaluators": {"accuracy": {"answer_accuracy": accuracy, "answer_accuracy_stderr": stderr}},
        "scorecard": {"overall": {"format_compliance": form}},
        "source": {"split": "eval"},
    }
    if ood is not None:
        summary["splits"] = {"ood": ood}
    return summary


def _facts(summary: dict, baseline: dict | None) -> ReadmeFacts:
    return ReadmeFacts(
        manifest={"run_id": "r"}, model_config={"num_params": 1}, summary=summary,
        baseline_summary=baseline, steps=80, final_loss=0.15, round_trip={},
        notebook_included=False, notebook_note="none", log_truncated=False, log_bytes=0,
        sample_count=0, prediction_count=0, entries={},
    )  # fmt: skip


OOD_AFTER = {"n": 200, "answer_accuracy": 0.095, "answer_accuracy_stderr": 0.0207,
             "format_compliance": 0.99}  # fmt: skip
OOD_BEFORE = {"n": 200, "answer_accuracy": 0.0, "answer_accuracy_stderr": 0.0,
              "format_compliance": 0.0}  # fmt: skip


def test_every_split_is_listed_before_and_after_with_its_error() -> None:
    after = _summary(0.245, 0.0304, 1.0, OOD_AFTER)
    before = _summary(0.0, 0.0, 0.0, OOD_BEFORE)
    readme = render_readme(_facts(after, before))
    assert "| eval | 200 | 0.0% ± 0.0% | 24.5% ± 3.0% | 0.0% | 100.0% |" in readme
    assert "| ood | 200 | 0.0% ± 0.0% | 9.5% ± 2.1% | 0.0% | 99.0% |" in readme
    assert readme.index("| eval | 200") < readme.index("| ood | 200")


def test_a_split_without_a_baseline_shows_a_dash_before() -> None:
    readme = render_readme(_facts(_summary(0.245, 0.0304, 1.0, OOD_AFTER), None))
    assert "| ood | 200 | — | 9.5% ± 2.1% | — | 99.0% |" in readme
    assert "No baseline was measured" in readme


def test_one_split_gets_no_split_table() -> None:
    summary = _summary(0.245, 0.0304, 1.0, None)
    assert list(split_scores(summary)) == ["eval"]
    assert "Every evaluated split" not in render_readme(_facts(summary, summary))
