"""Resolving what to compare, and comparisons of evaluations over different items."""

from __future__ import annotations

import pytest

from tunix_core.errors import TunixError
from tunix_core.evaluation import score_predictions
from tunix_core.layout import EVAL_SUMMARY
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval import compare as comparing


def write_eval(folder, answers: dict[str, str], expected: str = "1") -> None:
    predictions = [
        Prediction(i, "", f"<reasoning>r</reasoning><answer>{a}</answer>", expected)
        for i, a in answers.items()
    ]
    score_predictions(predictions, [], label=folder.name, out_dir=folder, context=RunContext(get_host()))


def test_only_items_in_both_evaluations_can_flip(tmp_path):
    write_eval(tmp_path / "a", {"x": "1", "y": "2", "only_a": "1"})
    write_eval(tmp_path / "b", {"x": "2", "y": "1", "only_b": "2"})
    result = comparing.compare(comparing.load(tmp_path / "a"), comparing.load(tmp_path / "b"))
    assert result.common_items == 2
    assert [f.id for f in result.broken] == ["x"] and [f.id for f in result.fixed] == ["y"]
    assert result.fixed[0].before == "2" and result.fixed[0].after == "1"
    rows = {name: (before, after) for name, before, after, _ in result.rows}
    assert rows["answer_accuracy"] == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    assert "mean_steps" not in rows  # no trace evaluator on either side
    text = comparing.format_comparison(result, show=0)
    assert "2 item(s) in both: 1 fixed" in text and "  fixed " not in text
    assert "... and 1 more fixed" in text


def test_resolve_accepts_a_summary_file_or_its_folder(tmp_path):
    write_eval(tmp_path / "e", {"x": "1"})
    assert comparing.resolve(tmp_path / "e" / EVAL_SUMMARY) == tmp_path / "e"
    assert comparing.resolve(tmp_path / "e") == tmp_path / "e"
    with pytest.raises(TunixError, match=r"no eval_summary\.json here"):
        comparing.resolve(tmp_path)
    with pytest.raises(TunixError, match="give two evaluations"):
        comparing.resolve_pair(tmp_path / "e", None)


def test_a_baseline_folder_is_named_after_its_run(tmp_path):
    write_eval(tmp_path / "run-1" / "baseline", {"x": "1"})
    assert comparing.load(tmp_path / "run-1" / "baseline").name == "run-1/baseline"
