"""Each callback of the training loop on its own, without a model."""

from __future__ import annotations

import math

import attrs
import jax.numpy as jnp
import numpy as np
import pytest

from tunix_core.hookspecs import hookimpl
from tunix_core.jsonio import read_jsonl
from tunix_core.plugins import PluginHost
from tunix_jax.training.callbacks import (
    BudgetStop,
    Checkpoints,
    MetricsLog,
    NanGuard,
    PluginStepHook,
    ProgressBar,
    StepEnd,
    TimeBudget,
    TrainingDivergedError,
)
from tunix_jax.training.checkpoint import Checkpointer


def _event(step: int, *, loss: float = 2.0, seconds: float = 0.5, params=None) -> StepEnd:
    return StepEnd(
        step=step, loss=loss, grad_norm=1.0, learning_rate=1e-3, step_tokens=100,
        seconds=seconds, tokens_seen=100 * step, train_seconds=seconds * step,
        params=params, opt_state={"count": np.int32(step)}, data={"epoch": 0, "cursor": step},
    )  # fmt: skip


def test_step_end_metrics_are_the_metrics_jsonl_line():
    assert _event(3).metrics() == {
        "step": 3, "loss": 2.0, "learning_rate": 1e-3, "grad_norm": 1.0,
        "tokens_per_second": 200.0, "tokens": 300, "elapsed_seconds": 1.5,
    }  # fmt: skip
    assert _event(1, seconds=0.0).metrics()["tokens_per_second"] is None


@pytest.mark.parametrize(("saved", "where"), [(4, "step 4"), (None, "no checkpoint yet")])
def test_nan_guard_stops_at_the_first_non_finite_step(saved, where):
    guard = NanGuard(lambda: saved)
    guard.on_step(_event(5))
    with pytest.raises(TrainingDivergedError, match=rf"at step 6: loss=nan.*kept \({where}\)"):
        guard.on_step(_event(6, loss=math.nan))


def test_metrics_log_keeps_every_nth_step_and_the_last(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path, log_every=3, total=7)
    for step in range(1, 8):
        log.on_step(_event(step))
        if step == 4:
            log.flush()
            assert [r["step"] for r in read_jsonl(path)] == [3]
    log.flush()
    assert [r["step"] for r in read_jsonl(path)] == [3, 6, 7]
    assert log.pending == []


def test_metrics_log_keeps_a_step_evaluated_during_training_whatever_log_every_says(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl", log_every=3, total=7)
    for step in range(1, 8):
        event = _event(step)
        if step in (2, 6):
            event = attrs.evolve(event, extra={"eval/ood_accuracy": 0.5, "eval/ood_format": 1.0})
        log.on_step(event)
    log.flush()
    lines = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in lines] == [2, 3, 6, 7]
    assert [r.get("eval/ood_accuracy") for r in lines] == [0.5, None, 0.5, None]


def test_metrics_log_of_another_process_writes_nothing(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl", log_every=1, total=2, writer=False)
    log.on_step(_event(1))
    log.flush()
    assert not (tmp_path / "metrics.jsonl").exists() and log.pending == []


def test_checkpoints_every_n_steps_and_the_last_one(tmp_path):
    flushed: list[int | None] = []
    checkpointer = Checkpointer(tmp_path, keep=2, async_save=True)
    checkpoints = Checkpoints(checkpointer, every=2, total=5, seed=7,
                              before_save=lambda: flushed.append(checkpoints.last_saved))  # fmt: skip
    try:
        for step in range(1, 6):
            checkpoints.on_step(_event(step, params={"w": np.full(3, step, np.float32)}))
        checkpoints.finish()
        assert flushed == [None, 2, 4]  # the metrics flush comes before each save
        assert checkpointer.all_steps() == [4, 5]  # keep=2
        assert checkpoints.last_saved == 5 and checkpoints.save_seconds >= 1.0
        params, opt_state, meta = checkpointer.restore(
            5, {"w": jnp.zeros(3, jnp.float32)}, {"count": jnp.zeros((), jnp.int32)}
        )
        np.testing.assert_array_equal(params["w"], np.full(3, 5, np.float32))
        assert int(opt_state["count"]) == 5
        assert meta == {"step": 5, "tokens": 500, "train_seconds": 2.5,
                        "data": {"epoch": 0, "cursor": 5}, "seed": 7}  # fmt: skip
    finally:
        checkpointer.close()


def test_checkpoints_save_nothing_new_when_the_last_step_is_saved(tmp_path):
    checkpointer = Checkpointer(tmp_path, keep=2, async_save=False)
    saves: list[int] = []
    checkpoints = Checkpoints(checkpointer, every=2, total=5, seed=0,
                              before_save=lambda: saves.append(1), last_saved=4)  # fmt: skip
    try:
        checkpoints.finish()  # resumed at step 4, no step taken
        assert saves == [] and checkpointer.all_steps() == []
    finally:
        checkpointer.close()


def test_budget_stop_estimates_the_step_time_and_keeps_the_reserve():
    budget = BudgetStop(TimeBudget(start=0.0, end=100.0, reserve_fraction=0.1), total=9,
                        save_seconds=lambda: 5.0)  # fmt: skip
    assert budget.stop_reason(0, now=80.0) is None  # no estimate yet: 80 + 0 + 2 * 5 <= 90
    for step, seconds in ((1, 10.0), (2, 4.0), (3, 14.0)):
        budget.on_step(_event(step, seconds=seconds))
    assert budget.step_seconds == pytest.approx(0.7 * 4.0 + 0.3 * 14.0)  # step 1 is compiling
    assert budget.stop_reason(3, now=73.0) is None
    reason = budget.stop_reason(3, now=73.5)
    assert reason == "time budget: stopped after step 3 of 9 to leave time for evaluation"


def test_time_budget_keeps_the_reserve_free():
    budget = TimeBudget(start=1000.0, end=2000.0, reserve_fraction=0.15)
    assert budget.train_until == 1850.0
    assert budget.allows(1800.0, step_seconds=10.0, save_seconds=5.0)
    assert not budget.allows(1835.0, step_seconds=10.0, save_seconds=5.0)
    assert TimeBudget(start=0.0, end=None, reserve_fraction=0.15).allows(1e12, 1.0, 1.0)


def test_progress_bar_counts_steps_and_shows_the_loss(capsys):
    bar = ProgressBar(total=4, initial=1, enabled=True)
    bar.on_step(_event(2, loss=1.25))
    bar.on_step(_event(3, loss=0.5))
    assert bar.bar.n == 3
    bar.close()
    err = capsys.readouterr().err
    assert "3/4" in err and "loss=0.5000" in err and "tok_s=200" in err


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[int, dict[str, float], object]] = []

    @hookimpl
    def tunix_train_step_end(self, step, metrics, run):
        self.calls.append((step, metrics, run))


def test_plugin_hook_gets_the_step_metrics_and_the_run():
    host, recorder, run = PluginHost(), _Recorder(), object()
    host.add_plugin(recorder, "recorder", "tests")
    hook = PluginStepHook(host.manager.hook.tunix_train_step_end, run)
    hook.on_step(_event(1, seconds=0.0))
    hook.on_step(_event(2))
    assert [step for step, _, _ in recorder.calls] == [1, 2]
    first, second = recorder.calls[0][1], recorder.calls[1][1]
    assert "tokens_per_second" not in first  # None (no time measured) is left out
    assert second == {"loss": 2.0, "learning_rate": 1e-3, "grad_norm": 1.0,
                      "tokens_per_second": 200.0, "tokens": 200.0, "elapsed_seconds": 1.0}  # fmt: skip
    assert all(type(v) is float for v in second.values()) and recorder.calls[1][2] is run
