"""What an implementation registered in a tunix registry must provide.

The registries hold lazy targets; once loaded, a target is called with no arguments
(a class or a factory) and the result must satisfy the matching protocol below. The run's
plugins reach its host (registries, hooks) and its progress only through the
:class:`tunix_core.context.RunContext` they are handed, never through a process-wide host.

A run's data flow: the dataset provider gives examples; the model backend loads the base
model once, and the evaluation loop (through :class:`Generator`) and the trainer share it;
the trainer exports through the backend; evaluators score predictions; the packager
verifies the export through the backend and builds the bundle.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

if TYPE_CHECKING:
    from tunix_core.config import RunConfig
    from tunix_core.context import RunContext
    from tunix_core.data.record import ReasoningExample
    from tunix_core.registry import TransformRegistry
    from tunix_core.rundir import RunDirectory


@runtime_checkable
class DatasetProvider(Protocol):
    """Produces reasoning examples for a split (``"train"`` or ``"eval"``)."""

    description: str

    def splits(self) -> Sequence[str]:
        """The split names this provider can load."""
        ...

    def load(
        self,
        split: str,
        *,
        argument: str | None,
        seed: int,
        options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[ReasoningExample]:
        """All examples of ``split``. ``argument`` is the text after ``name:`` in the
        dataset spec (a path for ``jsonl:PATH``); ``options`` come from ``dataset.options``;
        ``transforms`` are the run host's row transforms (for ``dataset.options.transform``).
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
class ModelSpec:
    """Which model a backend loads: the ``model.*`` section of a run config as plain data.

    ``weights`` is the backend's weights spec (``default``, ``gguf:PATH``, ...);
    ``options`` are the backend's own options (``model.options``), structured by it.
    ``init_from``: a model directory this backend exported (a run's ``model/``), loaded
    instead of ``weights`` (``model.init_from`` names the run).
    """

    preset: str
    weights: str = "default"
    tokenizer: str | None = None
    dtype: str = "float32"
    seed: int = 0
    options: Mapping[str, Any] = attrs.field(factory=dict)
    init_from: str | None = None

    @classmethod
    def from_config(cls, config: RunConfig) -> ModelSpec:
        from tunix_core.layout import RunLayout

        model = config.model
        init_from = None
        if model.init_from is not None:
            init_from = str(RunLayout(Path(model.init_from)).model_dir)
        return cls(model.preset, model.weights, model.tokenizer, model.dtype,
                   config.run.seed, dict(model.options), init_from)  # fmt: skip

    def key(self) -> str:
        """Equal for specs that load the same model (a cache key)."""
        return json.dumps(attrs.asdict(self), sort_keys=True, default=str)


@runtime_checkable
class LoadedModel(Generator, Protocol):
    """A model a backend loaded: it generates and scores. Backends may expose more (the
    ``jax`` backend's handle carries the Flax module, the tokenizer and the device mesh)."""

    spec: ModelSpec

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        """Per pair, the sum of the log-probabilities of the completion's tokens given the
        rendered prompt (teacher forcing), as GRPO and distillation need."""
        ...


@runtime_checkable
class StreamingModel(Protocol):
    """Optional for a :class:`LoadedModel`: hands out its completion while it decodes.
    ``tunix chat`` streams from such a model and keeps its history within
    ``context_length``; from any other model it prints each completion when it is done."""

    @property
    def context_length(self) -> int:
        """Most tokens the model attends over: the prompt plus the completion."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes as a prompt (with ``<bos>`` where the model adds one)."""
        ...

    def stream(self, prompt: str, *, max_new_tokens: int) -> Iterator[str]:
        """The greedy completion of ``prompt`` as text pieces in order, each handed out as
        soon as it is decoded; joined they equal ``generate([prompt], ...)[0]``. Decoding
        runs only while the iterator is read, so stopping to read it stops the model."""
        ...


@runtime_checkable
class SamplingModel(Protocol):
    """Optional for a :class:`LoadedModel`: draws completions at a temperature instead of
    greedily. ``tunix distill`` needs it to ask a teacher for several answers per question."""

    def sample(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[str]:
        """One completion per prompt (repeat a prompt to draw several), as ``generate``
        returns them, drawn at ``temperature`` (0 is greedy) from the smallest set of tokens
        whose probabilities add up to ``top_p``. The same prompts and ``seed`` give the
        same completions; different rows of one call are drawn independently."""
        ...


@attrs.frozen
class ModelExport:
    """What a backend wrote when it exported a model."""

    directory: Path
    model_id: str
    fingerprint: str  # of the exported weights; the manifest records it, the packager checks it


@runtime_checkable
class ModelBackend(Protocol):
    """Loads, runs, exports and verifies the models of one framework. Trainers, the
    evaluation loop, the judge, ``tunix eval`` and the packager's round trip reach models
    only through a backend. One instance serves one run: ``load`` of an equal spec returns
    the same loaded model, so a run loads its base model once, and ``load_export`` of what
    ``export`` wrote returns that model without reading it back. Every read of weights
    from disk says so in one ``progress`` line starting with ``[load]`` (what, and the
    seconds it took), so ``run.log`` counts a run's loads."""

    name: str

    def validate(self, spec: ModelSpec) -> None:
        """Check ``spec`` before a run directory exists (preset known, weights present and
        of the preset's shapes, options well formed). Raise
        :class:`tunix_core.errors.ConfigError` naming the ``model.*`` field."""
        ...

    def load(self, spec: ModelSpec, *, progress: Callable[[str], None]) -> LoadedModel:
        """The model ``spec`` names; loaded on the first call, the same object after."""
        ...

    def load_export(
        self, directory: Path, spec: ModelSpec, *, progress: Callable[[str], None]
    ) -> LoadedModel:
        """A model this backend exported to ``directory`` (a run's ``model/``), laid out
        on the devices as ``spec.options`` say; read from disk unless this instance wrote
        it (and it is still the export on disk)."""
        ...

    def export(self, model: LoadedModel, directory: Path, **extras: Any) -> ModelExport:
        """Write ``model`` (one this backend loaded, possibly trained since) to
        ``directory`` in the layout the competition's loader reads. ``extras`` are the
        backend's own (the ``jax`` backend takes ``adapters``)."""
        ...

    def verify(self, directory: Path, *, progress: Callable[[str], None]) -> dict[str, Any]:
        """Load an export with the target system's own loader where it is installed and
        compare its outputs with the probe saved at export time (always a read from disk:
        the round trip). Plain data; ``ok`` says whether it passed."""
        ...

    def export_problems(self, directory: Path) -> list[str]:
        """Problems with an export on disk (missing files, a config or shapes that do not
        match its preset); empty when it is complete. Reads metadata only."""
        ...


@attrs.frozen
class TrainResult:
    """What a trainer reports when it returns."""

    steps: int
    stopped_early: bool = False
    reason: str = ""
    export: ModelExport | None = None  # the model the trainer wrote through the backend


@runtime_checkable
class Trainer(Protocol):
    """Fine-tunes a model loaded by a backend. One instance drives one run."""

    def validate(self, config: RunConfig, *, context: RunContext) -> None:
        """Check what training needs before a run directory exists (its own options, batch
        vs devices, sequence length vs the model, the rewards it names in
        ``context.rewards``); the backend checks the model itself.
        Raise :class:`tunix_core.errors.ConfigError` naming the config field."""
        ...

    def train(
        self,
        config: RunConfig,
        run: RunDirectory,
        train_examples: Sequence[ReasoningExample],
        *,
        backend: ModelBackend,
        context: RunContext,
    ) -> TrainResult:
        """Train the model ``backend.load(ModelSpec.from_config(config))`` returns,
        resuming from ``run``'s checkpoints if there are any, append to
        ``run.metrics_path`` and export the final model to ``run.model_dir`` with
        ``backend.export``. ``run`` is where this training writes (the run directory, or
        one phase's folder in it); progress goes to ``context.progress`` and every step to
        ``context.hook.tunix_train_step_end``."""
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

    def evaluate(self, predictions: Sequence[Prediction], *, context: RunContext) -> EvaluatorReport:
        """Score ``predictions``; must not call a model unless the evaluator is a judge
        (which loads it through ``context.backends``). Answers are checked with
        ``context.answer_checks``."""
        ...


@attrs.frozen
class EvaluatorReport:
    """Aggregate metrics plus per-item fields merged into ``predictions.jsonl``."""

    metrics: Mapping[str, Any]
    per_item: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


class Reward(Protocol):
    """What a ``tunix_register_rewards`` target is: a function that scores a batch of
    completions for reinforcement learning. The four sequences are parallel (one entry per
    completion; ``meta`` is each item's meta, as in ``Prediction.meta``). Returns one float
    per completion, ``NaN`` where the reward does not apply (a weighted sum then leaves it
    out rather than counting it as zero). ``context`` is the run's (its answer checks)."""

    def __call__(
        self,
        prompts: Sequence[str],
        completions: Sequence[str],
        expected: Sequence[str],
        meta: Sequence[Mapping[str, Any]],
        *,
        context: RunContext,
    ) -> list[float]: ...


class RowTransform(Protocol):
    """What a ``tunix_register_transforms`` target is: a function from one row of a user's
    file (a JSON object or a dataset row) to a row in the tunix record schema (docs/
    datasets.md). Raises ``ValueError`` (or :class:`tunix_core.data.record.FieldError`,
    naming the field) for a row it cannot convert; the reader adds the file and line."""

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]: ...


@runtime_checkable
class TokenCounter(Protocol):
    """Optional for a :class:`LoadedModel`: counts tokens with the model's own tokenizer
    (``tunix datasets show --tokens`` measures a dataset with it)."""

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes as a prompt (with ``<bos>`` where the model adds one)."""
        ...


@runtime_checkable
class Packager(Protocol):
    """Turns a finished run into a submission bundle."""

    def package(
        self,
        run: RunDirectory,
        options: Mapping[str, Any],
        *,
        backend: ModelBackend,
        context: RunContext,
    ) -> Path:
        """Build the bundle under ``run.submission_dir`` and return its path; ``backend``
        (the run's) verifies the exported model; ``context`` gives the evaluators that
        recompute the scores."""
        ...

    def validate(self, path: Path, *, context: RunContext) -> list[str]:
        """Problems with a built bundle or run directory (judged with ``context``'s
        backends and evaluators); empty when it is good."""
        ...
