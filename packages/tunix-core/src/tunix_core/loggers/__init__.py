"""The built-in training loggers (TensorBoard, Weights & Biases), driven by the core
plugin's run hooks in :mod:`tunix_core.builtin` and switched by the ``logging`` section
of the run config (docs/logging.md).

Between ``tunix_run_started`` and ``tunix_run_finished`` a run has a :class:`RunLoggers`.
Each training step becomes the scalars ``train/<metric>`` at that step; the baseline and
final evaluations become ``baseline/<metric>`` at step 0 and ``final/<metric>`` at the
trained step. A logger never fails a run: the first error it raises is reported once (on
stderr and in ``run.log``) and that logger is dropped for the rest of the run.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from tunix_core.config import LoggingSection, structure
from tunix_core.evaluation import DURING_TRAINING_PREFIX, headline_metrics, read_summary
from tunix_core.types import BASELINE, EVALUATE, TrainDetail

if TYPE_CHECKING:
    from tunix_core.rundir import RunDirectory

log = logging.getLogger("tunix.loggers")

# The stages that evaluate a model, and the prefix of the scalars their summary becomes.
EVALUATION_PREFIXES = {BASELINE: "baseline", EVALUATE: "final"}


class MetricsLogger(Protocol):
    """Somewhere scalars go: ``log`` as often as there is something to log, ``close`` once."""

    name: str

    def training_starts(self, step: int) -> None:
        """This attempt's first training step: anything an earlier attempt of the run
        logged at ``step`` or later is stale (a resume goes on from its checkpoint)."""

    def log(self, scalars: Mapping[str, float], step: int) -> None: ...

    def close(self, status: str) -> None: ...


@attrs.define
class RunLoggers:
    """The loggers open for one run, and the last training step they were given
    (0: none yet in this attempt)."""

    loggers: list[MetricsLogger]
    last_step: int = 0

    def training_starts(self, step: int) -> None:
        self._each(lambda logger: logger.training_starts(step))

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self._each(lambda logger: logger.log(scalars, step))

    def close(self, status: str) -> None:
        self._each(lambda logger: logger.close(status))
        self.loggers.clear()

    def _each(self, action: Callable[[MetricsLogger], None]) -> None:
        for logger in list(self.loggers):
            try:
                action(logger)
            except Exception as exc:  # a metrics sink must never stop training
                self.loggers.remove(logger)
                report_failure(logger.name, exc)


def report_failure(name: str, exc: BaseException) -> None:
    """Say once that logger ``name`` is off and why."""
    warn(f"{name} logging is off for the rest of this run: {type(exc).__name__}: {exc}")


def warn(message: str) -> None:
    """``message`` on stderr and in ``run.log``."""
    log.warning(message)
    print(f"warning: {message}", file=sys.stderr)


# run directory -> its open loggers, for the runs of this process
_open: dict[Path, RunLoggers] = {}


def open_run_loggers(run: RunDirectory, config: Mapping[str, Any]) -> RunLoggers:
    """Open the loggers the run's ``logging`` section enables (``config``: the resolved
    run config as plain data, as ``tunix_run_started`` receives it)."""
    settings = structure(config.get("logging"), LoggingSection, source=str(run.config_path),
                         root="logging")  # fmt: skip
    factories: list[tuple[str, Callable[[], MetricsLogger]]] = []
    # Each logger's module is imported only when enabled: tensorboardX and wandb are optional.
    if settings.tensorboard:
        from tunix_core.loggers import tensorboard  # optional: tunix-core[tensorboard]

        if tensorboard.installed():
            factories.append((tensorboard.TensorBoardLogger.name,
                              lambda: tensorboard.TensorBoardLogger(run.tensorboard_dir)))  # fmt: skip
        else:
            warn(f"TensorBoard logging is off: tensorboardX is not installed "
                 f"({tensorboard.INSTALL_HINT})")  # fmt: skip
    if settings.wandb:
        from tunix_core.loggers.wandb import WandbLogger  # optional: tunix-core[wandb]

        factories.append((WandbLogger.name, lambda: WandbLogger.open(run, config, settings)))
    loggers: list[MetricsLogger] = []
    for name, factory in factories:
        try:
            loggers.append(factory())
        except Exception as exc:
            report_failure(name, exc)
    opened = RunLoggers(loggers)
    _open[run.path] = opened
    return opened


def log_train_step(run: RunDirectory, step: int, metrics: Mapping[str, float]) -> None:
    """``metrics`` of optimizer step ``step`` as ``train/<metric>``, and an evaluation taken
    during training (``eval/<split>_accuracy``, ...) under its own name; nothing for a run
    without open loggers (a trainer driven outside ``tunix run``)."""
    opened = _open.get(run.path)
    if opened is None:
        return
    if opened.last_step == 0:
        opened.training_starts(step)
    opened.last_step = step
    opened.log({name if name.startswith(DURING_TRAINING_PREFIX) else f"train/{name}": value
                for name, value in metrics.items()}, step)  # fmt: skip


def log_evaluation(run: RunDirectory, stage: str) -> None:
    """The headline metrics (answer accuracy, format compliance) of the summary an
    evaluating stage wrote; nothing after other stages."""
    opened = _open.get(run.path)
    prefix = EVALUATION_PREFIXES.get(stage)
    if opened is None or prefix is None:
        return
    if stage == BASELINE:
        summary, step = read_summary(run.baseline_summary_path), 0
    else:
        steps = TrainDetail.read(run.manifest).steps
        summary, step = read_summary(run.summary_path), opened.last_step if steps is None else steps
    headline = headline_metrics(summary)
    if headline:
        opened.log({f"{prefix}/{name}": value for name, value in headline.items()}, step)


def close_run_loggers(run: RunDirectory, status: str) -> None:
    opened = _open.pop(run.path, None)
    if opened is not None:
        opened.close(status)
