"""What runs around each training step, one concern per callback.

:func:`tunix_jax.training.loop.run_training` runs a step, packs what came out of it into a
:class:`StepEnd` and hands that to each callback's ``on_step`` in turn: the NaN guard,
the step-time estimate of the time budget, the metrics log, the progress bar, the
checkpoints, the plugins' ``tunix_train_step_end``. None of them touches the numerics.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from tunix_core.errors import TunixError
from tunix_core.evaluation import DURING_TRAINING_PREFIX
from tunix_core.jsonio import append_jsonl

if TYPE_CHECKING:
    from tunix_core.config import RunConfig
    from tunix_core.rundir import RunDirectory
    from tunix_jax.options import JaxTrainerOptions
    from tunix_jax.training.checkpoint import Checkpointer

# Before any save has been timed, assume a save (or the final export) takes this long.
DEFAULT_SAVE_SECONDS = 10.0


class TrainingDivergedError(TunixError):
    """The loss or the gradient became NaN or infinite; the last good checkpoint is kept."""


@attrs.frozen
class StepEnd:
    """One finished optimizer step: its outputs, the run's counters after it, and the
    state a checkpoint of it holds (``data``: the batch stream's position). ``extra``: a
    trainer's own metrics for the step's ``metrics.jsonl`` line (GRPO's rewards, KL, ...)."""

    step: int
    loss: float
    grad_norm: float
    learning_rate: float
    step_tokens: int
    seconds: float
    tokens_seen: int
    train_seconds: float
    params: Any = None
    opt_state: Any = None
    data: dict[str, int] = attrs.Factory(dict)
    extra: dict[str, float] = attrs.Factory(dict)

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss) and math.isfinite(self.grad_norm)

    @property
    def tokens_per_second(self) -> float | None:
        return self.step_tokens / self.seconds if self.seconds > 0 else None

    def metrics(self) -> dict[str, Any]:
        """The step's line of ``metrics.jsonl``."""
        return {
            "step": self.step, "loss": self.loss, "learning_rate": self.learning_rate,
            "grad_norm": self.grad_norm, "tokens_per_second": self.tokens_per_second,
            "tokens": self.tokens_seen, "elapsed_seconds": round(self.train_seconds, 3),
            **self.extra,
        }  # fmt: skip


class StepCallback(Protocol):
    def on_step(self, event: StepEnd) -> None: ...


@attrs.define
class NanGuard:
    """Stops the run at the first non-finite step. The step itself already kept the
    previous state, so the last checkpoint (``last_saved()``) is the last good one."""

    last_saved: Callable[[], int | None]

    def on_step(self, event: StepEnd) -> None:
        if event.finite:
            return
        saved = self.last_saved()
        where = f"step {saved}" if saved else "no checkpoint yet"
        raise TrainingDivergedError(
            f"training diverged at step {event.step}: loss={event.loss}, "
            f"grad_norm={event.grad_norm}; the last good checkpoint is kept ({where}). "
            "Lower training.learning_rate or set training.grad_clip."
        )


@attrs.define
class MetricsLog:
    """Collects a ``metrics.jsonl`` line every ``log_every`` steps and at the last step;
    :meth:`flush` appends them (only the ``writer`` process writes)."""

    path: Path
    log_every: int
    total: int
    writer: bool = True
    pending: list[dict[str, Any]] = attrs.Factory(list)

    def on_step(self, event: StepEnd) -> None:
        # A step evaluated during training is logged whatever log_every says.
        evaluated = any(name.startswith(DURING_TRAINING_PREFIX) for name in event.extra)
        if event.step % self.log_every == 0 or event.step == self.total or evaluated:
            self.pending.append(event.metrics())

    def flush(self) -> None:
        if self.pending and self.writer:
            append_jsonl(self.path, self.pending)
        self.pending.clear()


@attrs.define
class Checkpoints:
    """Saves every ``every`` steps in the background and, in :meth:`finish`, the last
    step if it is not saved yet (waiting for it). ``before_save`` runs first (the metrics
    flush), so a checkpoint never holds a step whose metrics are not on disk.
    ``save_seconds``: how long the last waited-for save took (the budget plans with it)."""

    checkpointer: Checkpointer
    every: int
    total: int
    seed: int
    before_save: Callable[[], None]
    last_saved: int | None = None
    save_seconds: float = DEFAULT_SAVE_SECONDS
    _last: StepEnd | None = None

    def on_step(self, event: StepEnd) -> None:
        self._last = event
        if event.step % self.every == 0 and event.step < self.total:
            self._save(event, wait=False)

    def finish(self) -> None:
        """Save the last step taken (none if it is saved or none was taken) and wait."""
        if self._last is not None and self.last_saved != self._last.step:
            self._save(self._last, wait=True)
        self.checkpointer.wait()

    def _save(self, event: StepEnd, *, wait: bool) -> None:
        self.before_save()
        began = time.monotonic()
        meta = {"step": event.step, "tokens": event.tokens_seen,
                "train_seconds": event.train_seconds, "data": event.data, "seed": self.seed}  # fmt: skip
        self.checkpointer.save(event.step, event.params, event.opt_state, meta)
        if wait:
            self.checkpointer.wait()
            self.save_seconds = max(time.monotonic() - began, 1.0)
        self.last_saved = event.step


@attrs.define
class TimeBudget:
    """When training must stop: ``reserve_fraction`` of the time between the start and
    the end (``start + time_budget`` or the deadline, whichever is first) is left for
    evaluation and packaging."""

    start: float
    end: float | None
    reserve_fraction: float

    @classmethod
    def from_config(
        cls, config: RunConfig, options: JaxTrainerOptions, started_at: float
    ) -> TimeBudget:
        ends = []
        if config.training.time_budget_seconds is not None:
            ends.append(started_at + config.training.time_budget_seconds)
        if options.deadline_seconds is not None:
            ends.append(options.deadline_seconds)
        return cls(started_at, min(ends) if ends else None, options.reserve_fraction)

    @property
    def train_until(self) -> float | None:
        if self.end is None:
            return None
        return self.end - self.reserve_fraction * max(self.end - self.start, 0.0)

    def allows(self, now: float, step_seconds: float, save_seconds: float) -> bool:
        """Whether one more step plus the final checkpoint and export fit."""
        limit = self.train_until
        return limit is None or now + step_seconds + 2 * save_seconds <= limit


@attrs.define
class BudgetStop:
    """Asks, before each step, whether one more step and the final save still fit in the
    :class:`TimeBudget`; ``on_step`` keeps the step-time estimate."""

    budget: TimeBudget
    total: int
    save_seconds: Callable[[], float]
    step_seconds: float | None = None

    def stop_reason(self, step: int, now: float) -> str | None:
        """Why training stops before step ``step + 1``, or None to go on."""
        estimate = self.step_seconds if self.step_seconds is not None else 0.0
        if self.budget.allows(now, estimate, self.save_seconds()):
            return None
        return (
            f"time budget: stopped after step {step} of {self.total} to leave time for evaluation"
        )

    def on_step(self, event: StepEnd) -> None:
        # The first step includes compilation; later ones estimate the step time.
        if self.step_seconds is None or event.step <= 2:
            self.step_seconds = event.seconds
        else:
            self.step_seconds = 0.7 * self.step_seconds + 0.3 * event.seconds


class ProgressBar:
    """A tqdm bar on stderr with the loss and tokens per second."""

    def __init__(self, total: int, initial: int, *, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=total, initial=initial, file=sys.stderr, unit="step", desc="train",
            disable=not enabled, dynamic_ncols=True,
        )  # fmt: skip

    def on_step(self, event: StepEnd) -> None:
        rate = event.tokens_per_second or 0
        shown = {"loss": f"{event.loss:.4f}", "tok_s": f"{rate:.0f}"}
        if "reward" in event.extra:
            shown["reward"] = f"{event.extra['reward']:.3f}"
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


@attrs.define
class PluginStepHook:
    """Calls ``tunix_train_step_end`` (``hook``: a pluggy hook caller, or any callable
    taking the same keywords) with the step's metrics; ``None`` values are left out."""

    hook: Callable[..., Any]
    run: RunDirectory

    def on_step(self, event: StepEnd) -> None:
        metrics = {k: float(v) for k, v in event.metrics().items() if k != "step" and v is not None}
        self.hook(step=event.step, metrics=metrics, run=self.run)
