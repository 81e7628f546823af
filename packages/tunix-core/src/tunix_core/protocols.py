"""What an implementation registered in a tunix registry must provide.

The registries hold lazy targets; once loaded, a target is called with no arguments
(a class or a factory) and the result must satisfy the matching protocol below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from tunix_core.config import RunConfig
    from tunix_core.data.record import ReasoningExample
    from tunix_core.rundir import RunDirectory


@runtime_checkable
class DatasetProvider(Protocol):
    """Produces reasoning examples for a split (``"train"`` or ``"eval"``)."""

    description: str

    def splits(self) -> Sequence[str]:
        """The split names this provider can load."""
        ...

    def load(
        self, split: str, *, argument: str | None, seed: int, options: Mapping[str, Any]
    ) -> list[ReasoningExample]:
        """All examples of ``split``. ``argument`` is the text after ``name:`` in the
        dataset spec (a path for ``jsonl:PATH``); ``options`` come from ``dataset.options``.
        Raise :class:`tunix_core.errors.DataError` with file/line/field for bad input."""
        ...


@runtime_checkable
class Generator(Protocol):
    """A loaded model that completes rendered prompts."""

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        """Greedy completions of ``prompts`` (rendered chat turns), without the prompt,
        stopped at ``<end_of_turn>``/``<eos>`` (the stop token is not included)."""
        ...


@attrs.frozen
class TrainResult:
    """What a trainer reports when it returns."""

    steps: int
    stopped_early: bool = False
    reason: str = ""
    model_dir: Path | None = None
    model_id: str = ""
    model_fingerprint: str | None = None  # of the exported weights; the packager checks it


@runtime_checkable
class Trainer(Protocol):
    """Fine-tunes a model. One instance drives one run."""

    def validate(self, config: RunConfig) -> None:
        """Check everything that can be checked before a run directory exists (weights
        present, shapes, batch vs devices, sequence length). Raise
        :class:`tunix_core.errors.ConfigError` naming the config field."""
        ...

    def generator(self, config: RunConfig, run: RunDirectory | None, *, trained: bool) -> Generator:
        """A generator over the untrained model (``trained=False``, the baseline) or the
        model in ``run.model_dir`` (``trained=True``)."""
        ...

    def train(
        self,
        config: RunConfig,
        run: RunDirectory,
        train_examples: Sequence[ReasoningExample],
        *,
        progress: Callable[[str], None],
    ) -> TrainResult:
        """Train, resuming from ``run``'s checkpoints if there are any, append to
        ``run.metrics_path`` and write the final model to ``run.model_dir``."""
        ...


@attrs.frozen
class Prediction:
    """One scored completion. ``meta`` carries category, section and difficulty."""

    id: str
    prompt: str
    completion: str
    expected: str
    meta: Mapping[str, Any] = attrs.field(factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """Scores predictions. ``name`` prefixes its metrics in the summary."""

    name: str

    def evaluate(self, predictions: Sequence[Prediction]) -> EvaluatorReport:
        """Score ``predictions``; must not call a model unless the evaluator is a judge."""
        ...


@attrs.frozen
class EvaluatorReport:
    """Aggregate metrics plus per-item fields merged into ``predictions.jsonl``."""

    metrics: Mapping[str, Any]
    per_item: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


@runtime_checkable
class Packager(Protocol):
    """Turns a finished run into a submission bundle."""

    def package(self, run: RunDirectory, options: Mapping[str, Any]) -> Path:
        """Build the bundle under ``run.submission_dir`` and return its path."""
        ...

    def validate(self, path: Path) -> list[str]:
        """Problems with a built bundle or run directory; empty when it is good."""
        ...
