"""``code-exec``: HumanEval answers run against their tests in a limited subprocess
(needs tunix-datasets[humaneval], which nox's eval tests install)."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path

import pytest

from tunix_core.data.loading import load_split
from tunix_core.data.record import ReasoningExample
from tunix_core.errors import DataError
from tunix_core.evaluation import example_meta, prediction_from_record, score_predictions
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.code_exec import ALLOW_NETWORK_VARIABLE, CodeExecEvaluator
from tunix_eval.plugin import EVALUATORS


@pytest.fixture(autouse=True)
def network_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests score; where the network cannot be cut they run with it
    (test_code_exec_hostile.py tests the refusal)."""
    monkeypatch.setenv(ALLOW_NETWORK_VARIABLE, "1")


@cache
def load_problems() -> list[ReasoningExample]:
    """Every HumanEval problem in task order, as the installed ``humaneval`` dataset gives
    them (both splits)."""
    host = get_host()
    items = [item for split in ("train", "eval")
             for item in load_split(host.datasets, "humaneval", split, seed=0,
                                    transforms=host.transforms)]  # fmt: skip
    return sorted(items, key=lambda item: int(item.meta.extra["task_id"].rsplit("/", 1)[-1]))


def predict(item: ReasoningExample, answer: str | None) -> Prediction:
    block = "" if answer is None else f"<answer>{answer}</answer>"
    return Prediction(item.id, "", f"<reasoning>r</reasoning>{block}", item.answer,
                      example_meta(item))  # fmt: skip


def only_function(body: str) -> str:
    """A complete answer to HumanEval/0 with ``body`` as the function body."""
    return f"def has_close_elements(numbers, threshold):\n{body}"


def first() -> ReasoningExample:
    """HumanEval/0, ``has_close_elements`` (loaded in the tests, not at collection: other
    sessions collect this file without the humaneval extra)."""
    return load_problems()[0]


def outcome(answer: str, **limits: float) -> dict[str, object]:
    report = CodeExecEvaluator(**limits).evaluate(
        [predict(first(), answer)], context=RunContext(get_host())
    )  # type: ignore[arg-type]
    return dict(report.per_item[first().id])


def test_every_canonical_solution_passes_and_wrong_answers_fail() -> None:
    items = load_problems()
    report = CodeExecEvaluator().evaluate(
        [predict(item, item.answer) for item in items], context=RunContext(get_host())
    )
    assert report.metrics["pass_at_1"] == 1.0
    assert report.metrics["n"] == 164 and report.metrics["outcomes"] == {"passed": 164}
    wrong = [predict(item, f"def {item.meta.extra['entry_point']}(*args):\n    return None")
             for item in items[:8]]  # fmt: skip
    report = CodeExecEvaluator().evaluate(wrong, context=RunContext(get_host()))
    assert (report.metrics["passed"], report.metrics["pass_at_1"]) == (0, 0.0)
    assert {item["outcome"] for item in report.per_item.values()} == {"failed"}
    assert report.per_item[items[0].id]["error"] == "AssertionError"


def test_answers_run_after_the_prompts_code_and_may_be_fenced() -> None:
    # HumanEval/10's answer calls is_palindrome, which only the prompt defines.
    item = load_problems()[10]
    fenced = f"```python\n{item.answer}\n```"
    assert (
        CodeExecEvaluator()
        .evaluate([predict(item, fenced)], context=RunContext(get_host()))
        .metrics["passed"]
        == 1
    )


def test_the_time_limit_kills_an_infinite_loop() -> None:
    started = time.monotonic()
    result = outcome(only_function("    while True:\n        pass"), timeout_s=1.0)
    assert result["outcome"] == "timeout" and result["passed"] is False
    assert time.monotonic() - started < 5


def test_the_time_limit_kills_the_programs_children_too(tmp_path: Path) -> None:
    # A child that outlives the killed program would write its file after two seconds.
    marker = tmp_path / "survived"
    child = f"import time; time.sleep(2); open({str(marker)!r}, 'w')"
    spawn = ("    import subprocess, sys\n"
             f"    subprocess.Popen([sys.executable, '-c', {child!r}])\n"
             "    while True:\n        pass")  # fmt: skip
    assert outcome(only_function(spawn), timeout_s=1.0)["outcome"] == "timeout"
    time.sleep(2.5)
    assert not marker.exists()


def test_the_memory_limit_stops_a_huge_allocation() -> None:
    result = outcome(only_function("    block = bytearray(4 * 1024 ** 3)\n    return False"),
                     memory_mb=256)  # fmt: skip
    assert result["outcome"] == "memory_limit" and result["passed"] is False
    assert str(result["error"]).startswith("MemoryError")


def test_the_program_gets_no_environment_and_a_fresh_folder() -> None:
    probe = ("    import os\n"
             "    assert 'HOME' not in os.environ, 'environment'\n"
             "    assert os.listdir('.') == ['program.py'], 'folder'\n"
             "    raise SystemExit(7)")  # fmt: skip
    # Both assertions held: the program reached its own exit status, with nothing on stderr.
    assert outcome(only_function(probe)) == {"passed": False, "outcome": "failed",
                                             "error": "exit status 7",
                                             "seconds": pytest.approx(0.1, abs=2)}  # fmt: skip


def test_network_isolation_is_reported_as_it_is() -> None:
    evaluator = CodeExecEvaluator()
    only_loopback = ("    import socket\n"
                     "    assert [name for _, name in socket.if_nameindex()] == ['lo']\n"
                     "    raise SystemExit(0)")  # fmt: skip
    result = evaluator.evaluate(
        [predict(first(), only_function(only_loopback))], context=RunContext(get_host())
    )
    assert result.metrics["network_isolated"] is evaluator.network_isolated
    # Isolated, the program sees no interface but loopback; not isolated, it sees the host's.
    assert result.per_item[first().id]["passed"] is evaluator.network_isolated


def test_items_without_tests_are_skipped_and_missing_answers_fail() -> None:
    plain = Prediction("p1", "", "<answer>4</answer>", "4", {"category": "math"})
    report = CodeExecEvaluator().evaluate(
        [plain, predict(first(), None)], context=RunContext(get_host())
    )
    assert report.metrics["skipped_without_tests"] == 1 and report.metrics["n"] == 1
    assert "p1" not in report.per_item
    assert report.per_item[first().id]["outcome"] == "no_answer"
    broken = Prediction("p2", "", "<answer>x</answer>", "x", {"test": "def check(c): pass"})
    with pytest.raises(DataError, match=r"item 'p2': code-exec needs meta\.test"):
        CodeExecEvaluator().evaluate([broken], context=RunContext(get_host()))


def test_scores_land_in_the_summary_and_survive_rescoring(tmp_path: Path) -> None:
    items = load_problems()[:3]
    predictions = [predict(items[0], items[0].answer), predict(items[1], "x = 1"),
                   predict(items[2], None)]  # fmt: skip
    summary = score_predictions(predictions, [CodeExecEvaluator()], label="code",
                                out_dir=tmp_path, context=RunContext(get_host()))  # fmt: skip
    metrics = json.loads((tmp_path / EVAL_SUMMARY).read_text())["evaluators"]["code-exec"]
    assert metrics == summary["evaluators"]["code-exec"]
    assert (metrics["n"], metrics["passed"]) == (3, 1)
    assert metrics["pass_at_1"] == pytest.approx(1 / 3)
    # The tests travel in predictions.jsonl, so `tunix eval --predictions` can rerun them.
    records = [json.loads(line) for line in (tmp_path / PREDICTIONS).read_text().splitlines()]
    assert [r["scores"]["code-exec"]["passed"] for r in records] == [True, False, False]
    again = CodeExecEvaluator().evaluate(
        [prediction_from_record(r) for r in records], context=RunContext(get_host())
    )
    assert again.metrics["passed"] == 1


def test_it_is_registered_but_off_by_default() -> None:
    from tunix_core.config import RunConfig

    assert EVALUATORS["code-exec"][0] == "tunix_eval.code_exec:CodeExecEvaluator"
    assert "code-exec" not in RunConfig().eval.evaluators
    with pytest.raises(ValueError, match="must be > 0"):
        CodeExecEvaluator(timeout_s=0)
