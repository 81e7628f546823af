"""What an implementation registered in a tunix registry must provide.

The registries hold lazy targets; once loaded, a target is called with no arguments
(a class or a factory) and the result must satisfy the matching protocol below. The run's
plugins reach its host (registries, hooks) and its progress only through the
:class:`RunContext` they are handed, never through a process-wide host.

The protocols, each kind's registry and the run context name one another, so they live in
this one module, below the plugin host (:mod:`tunix_core.plugins`) and the runner.

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

from tunix_core.layout import RunLayout
from tunix_core.registry import (
    ANSWER_CHECK_NAME,
    REWARD_NAME,
    TRANSFORM_NAME,
    Entry,
    Registry,
)

if TYPE_CHECKING:
    import pluggy

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
        stopped at ``<end_of_turn>``/``<eos>`` (the stop token is not included) or right
        after the first ``</answer>`` (kept)."""
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
        model = config.model
        init_from = None
        if model.init_from is not None:
            init_from = str(RunLayout(Path(model.init_from)).model_dir)
        return cls(model.preset, model.weights, model.tokenizer, model.dtype,
                   config.run.seed, dict(model.options), init_from)  # fmt: skip

    @classmethod
    def for_evaluation(cls, config: RunConfig, dtype: str | None = None) -> ModelSpec:
        """The model to evaluate: the run's, its parameters in ``dtype``, else ``eval.dtype``,
        else ``model.dtype``."""
        spec = cls.from_config(config)
        chosen = dtype or config.eval.dtype
        return attrs.evolve(spec, dtype=chosen) if chosen else spec

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


@runtime_checkable
class ResolvingBackend(Protocol):
    """Optional for a :class:`ModelBackend`: some of its ``model.options`` leave a choice
    to the machine (the ``jax`` backend's ``matmul_dtype: auto``). ``tunix run`` settles
    them before anything runs and writes the settled values into the run's config, so
    whatever is keyed on the model spec (the baseline cache) and a ``--resume`` see the
    choice, not the word; the manifest's ``model_choices`` and ``run.log`` record each
    choice with its reason."""

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        """Per option of ``options`` this machine settles, ``{"value": ..., "reason":
        ...}``; empty when none is left open."""
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

    def validate(self, path: Path, *, context: RunContext, deep: bool = False) -> list[str]:
        """Problems with a built bundle or run directory (judged with ``context``'s
        backends and evaluators); empty when it is good. Model files are checked against
        what their export recorded; ``deep`` also loads each model export and re-runs its
        probe."""
        ...


@attrs.frozen
class AnswerOptions:
    """Tolerances an answer check may honour: ``rel_tol`` for numbers, ``ordered_lists``
    for lists under ``auto`` (the ``accuracy`` evaluator's options)."""

    rel_tol: float = 1e-6
    ordered_lists: bool = True


@attrs.frozen
class AnswerVerdict:
    """Whether an answer is correct, and the rule that said so (per item as ``rule``)."""

    correct: bool
    rule: str


class AnswerCheck(Protocol):
    """What a ``tunix_register_answer_checks`` target is. ``answer`` is the text of the
    ``<answer>`` block (never ``None``: a missing block is wrong before any check runs).
    Raise ``ValueError`` when ``expected`` cannot be judged by this check."""

    def __call__(self, answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict: ...


class ItemAnswerCheck(Protocol):
    """An answer check that also reads the item's meta (its ``meta.extra`` fields, e.g. the
    generator entry a scorer re-reads). It says so with ``takes_meta = True`` and is called
    with ``meta=`` the prediction's meta; raise ``ValueError`` when that meta lacks what it
    needs."""

    takes_meta: bool

    def __call__(
        self, answer: str, expected: str, options: AnswerOptions, *, meta: Mapping[str, Any]
    ) -> AnswerVerdict: ...


class DatasetRegistry(Registry[Callable[[], DatasetProvider]]):
    """Dataset providers. A name may carry an argument after a colon: ``jsonl:data/train.jsonl``."""

    def __init__(self) -> None:
        super().__init__(
            "dataset",
            "Datasets come from plugins: `pip install tunix-datasets` (the built-in ones) or "
            "any package that registers one under the entry-point group 'tunix'.",
        )

    @staticmethod
    def split_name(spec: str) -> tuple[str, str | None]:
        """``"jsonl:path"`` -> ``("jsonl", "path")``; ``"golden-v2"`` -> ``("golden-v2", None)``."""
        name, sep, argument = spec.partition(":")
        return name, (argument if sep else None)

    def entry(self, name: str) -> Entry:
        return super().entry(self.split_name(name)[0])


class TrainerRegistry(Registry[Callable[[], Trainer]]):
    def __init__(self) -> None:
        super().__init__("trainer", "Get the JAX trainer with `pip install tunix-jax`.")


class BackendRegistry(Registry[Callable[[], ModelBackend]]):
    """Model backends: what loads, runs, exports and verifies a model (``model.backend``)."""

    def __init__(self) -> None:
        super().__init__("model backend", "Get the JAX backend with `pip install tunix-jax`.")


class EvaluatorRegistry(Registry[Callable[[], Evaluator]]):
    def __init__(self) -> None:
        super().__init__("evaluator", "Get the standard evaluators with `pip install tunix-eval`.")


class PackagerRegistry(Registry[Callable[[], Packager]]):
    def __init__(self) -> None:
        super().__init__("packager", "Get the Kaggle packager with `pip install tunix-package`.")


class AnswerCheckRegistry(Registry[AnswerCheck]):
    """Answer checks: functions ``check(answer, expected, options) -> AnswerVerdict``
    (:mod:`tunix_core.evaluation`) that an item picks by name in ``meta.answer_match``."""

    name_rule = ANSWER_CHECK_NAME

    def __init__(self) -> None:
        super().__init__(
            "answer check", "The standard answer checks come with `pip install tunix-eval`."
        )


class RewardRegistry(Registry[Reward]):
    """Rewards: functions ``reward(prompts, completions, expected, meta) -> list[float]``
    (:class:`tunix_core.protocols.Reward`) that a trainer weights by name."""

    name_rule = REWARD_NAME

    def __init__(self) -> None:
        super().__init__("reward", "The standard rewards come with `pip install tunix-eval`.")


class TransformRegistry(Registry[RowTransform]):
    """Row transforms: functions ``transform(row) -> row`` (:class:`tunix_core.protocols.
    RowTransform`) that turn a source's rows into tunix records before they are read,
    picked by name in ``dataset.options.transform`` of ``jsonl:`` and ``hf:``."""

    name_rule = TRANSFORM_NAME

    def __init__(self) -> None:
        super().__init__("transform", "Transforms come from plugins (docs/datasets.md).")


class Host(Protocol):
    """What a run context reaches of its plugin host (:class:`tunix_core.plugins.PluginHost`,
    which builds the registries from the installed plugins)."""

    manager: pluggy.PluginManager
    datasets: DatasetRegistry
    trainers: TrainerRegistry
    backends: BackendRegistry
    evaluators: EvaluatorRegistry
    packagers: PackagerRegistry
    answer_checks: AnswerCheckRegistry
    rewards: RewardRegistry
    transforms: TransformRegistry


def _silent(_message: str) -> None:
    """Progress nobody reads (a command scoring outside a run)."""


@attrs.frozen
class RunContext:
    """What a run hands its plugins: the host it was started with, so two runs in one
    process with different hosts each fire their own plugins (only the command line and
    :func:`tunix_core.api.run` build a host, with :func:`tunix_core.plugins.get_host`).
    ``run`` is None outside a run's stages (validation before the run directory exists,
    ``tunix eval``, ``tunix validate``); ``progress`` receives the lines a run echoes and
    writes to ``run.log``."""

    host: Host
    run: RunDirectory | None = None
    progress: Callable[[str], None] = _silent

    @property
    def hook(self) -> pluggy.HookRelay:
        """The host's hook caller (``context.hook.tunix_train_step_end(...)``)."""
        return self.host.manager.hook

    @property
    def answer_checks(self) -> AnswerCheckRegistry:
        return self.host.answer_checks

    @property
    def rewards(self) -> RewardRegistry:
        return self.host.rewards

    @property
    def backends(self) -> BackendRegistry:
        return self.host.backends

    @property
    def evaluators(self) -> EvaluatorRegistry:
        return self.host.evaluators

    @property
    def transforms(self) -> TransformRegistry:
        return self.host.transforms

    def within(self, run: RunDirectory, progress: Callable[[str], None]) -> RunContext:
        """This context for the stages of ``run``, reporting to ``progress``."""
        return attrs.evolve(self, run=run, progress=progress)

