"""The sweep file: a base run config, a search space over its fields by dotted path, the
number of trials, the objective and the search settings.

Structured with tunix_core's converter, so errors read like the run config's
(``sweep.yaml: invalid configuration:\\n  space[training.lora.rank].low: ...``); the checks
the converter cannot make (bounds, categorical choices, fields of the run config) raise
one line naming ``space.<dotted field>`` or ``objective``.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from tunix_core.config import (
    FieldRuleError,
    RunConfig,
    apply_overrides,
    at_least,
    duration,
    load_yaml,
    one_of,
    parse_duration,
    structure,
    structure_config,
)
from tunix_core.errors import ConfigError
from tunix_core.evaluation import DURING_TRAINING_PREFIX, during_training_names
from tunix_sweep.trial import TrialFailed

PARAM_TYPES = ("float", "int", "categorical")
DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random")
PRUNERS = ("none", "median")
MAX_SEED = 2**32 - 1  # the samplers seed NumPy, which takes 0 to 2**32 - 1
PRUNE_ON_LOSS = "loss"


def _metric_name(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value.strip():
        raise FieldRuleError(attribute.name, "must name a step metric, e.g. eval/ood_accuracy")


def _seed(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    if not 0 <= value <= MAX_SEED:
        raise FieldRuleError(attribute.name, f"must be between 0 and {MAX_SEED}, got {value!r}")


@attrs.frozen
class ParamSpec:
    """One searched field: ``float`` or ``int`` between ``low`` and ``high`` (``log`` for a
    log scale, ``step`` for a grid), or ``categorical`` over ``choices``."""

    type: str = attrs.field(validator=one_of(*PARAM_TYPES))
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def problem(self) -> str | None:
        """What is wrong with this parameter, or None."""
        if self.type == "categorical":
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                return "a categorical parameter takes only choices (no low, high, log or step)"
            if not self.choices:
                return "choices: must list at least one value, got none"
            odd = [c for c in self.choices if not isinstance(c, str | int | float | bool)]
            if odd:
                return f"choices: must be numbers, text or true/false, got {odd[0]!r}"
            return None
        if self.choices is not None:
            return f"a {self.type} parameter takes low and high, not choices"
        if self.low is None or self.high is None:
            return f"a {self.type} parameter needs both low and high"
        if self.type == "int" and not all(
            float(v).is_integer() for v in (self.low, self.high, self.step or 1)
        ):
            return f"an int parameter needs whole low, high and step, got {self.low}, {self.high}"
        if self.low > self.high:
            return f"low {self.low!r} is above high {self.high!r}"
        if self.log and self.low <= 0:
            return f"log: a log scale needs low > 0, got {self.low!r}"
        if self.log and self.step is not None:
            return "log and step cannot be combined"
        if self.step is not None and self.step <= 0:
            return f"step: must be > 0, got {self.step!r}"
        if self.step is not None and self.low < self.high and self.step > self.high - self.low:
            # Optuna would silently shrink the range to low alone
            return (f"step: {self.step!r} is larger than the range {self.low!r} to {self.high!r}, "
                    "which would keep only low")  # fmt: skip
        return None

    def extremes(self) -> list[Any]:
        """The values a trial may take at the edges: every choice, or low and high."""
        if self.type == "categorical":
            return list(self.choices or [])
        assert self.low is not None and self.high is not None  # checked by problem()
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


@attrs.frozen
class SweepSpec:
    """A sweep file. ``base`` is a run config mapping or the path of one (relative to the
    sweep file); ``space`` maps dotted config fields to :class:`ParamSpec`."""

    space: dict[str, ParamSpec]
    name: str | None = None
    base: Any = attrs.field(factory=dict)
    trials: int = attrs.field(default=20, validator=at_least(1))
    objective: str = "primary_score"
    direction: str = attrs.field(default="maximize", validator=one_of(*DIRECTIONS))
    time_budget: str | None = attrs.field(default=None, validator=duration)
    sampler: str = attrs.field(default="tpe", validator=one_of(*SAMPLERS))
    seed: int = attrs.field(default=0, validator=_seed)
    pruner: str = attrs.field(default="median", validator=one_of(*PRUNERS))
    pruner_startup_trials: int = attrs.field(default=2, validator=at_least(0))
    pruner_warmup_steps: int = attrs.field(default=1, validator=at_least(0))
    # The step metric a trial is pruned on: the training loss, or what the base config's
    # eval.during_training measures (eval/<split>_accuracy, eval/<split>_format).
    prune_on: str = attrs.field(default=PRUNE_ON_LOSS, validator=_metric_name)
    # null: maximize for an eval/ metric, minimize for any other.
    prune_direction: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(one_of(*DIRECTIONS))
    )
    concurrent_trials: int = attrs.field(default=1, validator=at_least(1))

    @property
    def time_budget_seconds(self) -> float | None:
        return None if self.time_budget is None else parse_duration(self.time_budget)

    @property
    def prune_mode(self) -> str:
        """Whether a higher ``prune_on`` is better (``maximize``) or worse (``minimize``)."""
        if self.prune_direction is not None:
            return self.prune_direction
        return "maximize" if self.prune_on.startswith(DURING_TRAINING_PREFIX) else "minimize"


@attrs.frozen
class Sweep:
    """A checked sweep: its spec and the base run config as plain data (file read, ``--set``
    applied), which every trial starts from."""

    spec: SweepSpec
    name: str
    base: dict[str, Any]

    def definition(self) -> dict[str, Any]:
        """What identifies the search, saved in the sweep folder: a rerun must match it.
        ``trials``, ``time_budget`` and ``concurrent_trials`` may change between runs."""
        spec = attrs.asdict(self.spec)
        for free in ("trials", "time_budget", "concurrent_trials", "base", "name"):
            spec.pop(free)
        # Left out at their defaults, so that a sweep folder started before they existed
        # (pruning on the loss) still matches its own sweep file.
        if spec["prune_on"] == PRUNE_ON_LOSS and spec["prune_direction"] is None:
            del spec["prune_on"], spec["prune_direction"]
        return {"name": self.name, "base": self.base, **spec}

    def trial_config(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The base config with one trial's parameters set (the parameters win over ``--set``)."""
        config = copy.deepcopy(self.base)
        for field, value in params.items():
            set_field(config, field, value)
        return config


def load_sweep(path: Path, overrides: Sequence[str] = (), *, trials: int | None = None) -> Sweep:
    """Read, structure and check a sweep file; ``overrides`` (``KEY=VALUE``) go into the base
    config of every trial, ``trials`` replaces the file's count. Raises one ConfigError."""
    data = load_yaml(path)
    if trials is not None:
        data["trials"] = trials
    source = str(path)
    spec = structure(data, SweepSpec, source=source)
    if isinstance(spec.base, str):
        base_path = (path.parent / spec.base).resolve()
        base = load_yaml(base_path)
        base_source = f"{source}: base ({base_path})"
    elif isinstance(spec.base, Mapping):
        base, base_source = dict(spec.base), f"{source}: base"
    else:
        raise ConfigError(f"{source}: base: must be a run config mapping or the path of one, "
                          f"got {spec.base!r}")  # fmt: skip
    base = apply_overrides(base, overrides)
    base_config = structure_config(base, base_source)
    if not spec.space:
        raise ConfigError(f"{source}: space: must name at least one config field to search")
    for field, param in spec.space.items():
        problem = param.problem()
        if problem is not None:
            raise ConfigError(f"{source}: space.{field}: {problem}")
        for value in param.extremes():
            _check_field_value(base, field, value, source)
    _check_objective(spec.objective, source)
    _check_prune_on(spec.prune_on, base_config, source)
    name = spec.name or path.stem
    return Sweep(spec, name, base)


def _check_field_value(base: dict[str, Any], field: str, value: Any, source: str) -> None:
    """The run config with ``field`` set to ``value`` must be valid; else one line naming
    ``space.<field>`` and the run config's own complaint."""
    config = copy.deepcopy(base)
    try:
        set_field(config, field, value)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        structure_config(config)
    except ConfigError as exc:
        # "config: invalid configuration:\n  training.foo: unknown key ..." -> its lines
        problems = [line.strip() for line in str(exc).splitlines()[1:]] or [str(exc)]
        mine = [p for p in problems if p.startswith(f"{field}:") or p.startswith(f"{field}.")]
        rule = (mine or problems)[0].removeprefix(f"{field}:").strip()
        raise ConfigError(f"{source}: space.{field}: {value!r} is not valid there: {rule}") from None


def set_field(config: dict[str, Any], field: str, value: Any) -> None:
    """Set dotted ``field`` of a plain config mapping, making sections on the way. Values
    are set as they are, not through ``--set``'s YAML parsing (which reads 1e-05 as text).
    A number after a list names one of its items: ``dataset.mix.1.weight`` is the weight
    of the second part the base config lists."""
    *sections, key = field.split(".")
    node: dict[str, Any] | list[Any] = config
    for section in sections:
        if isinstance(node, list):
            child = node[_position(node, section, field)]
        else:
            child = node.setdefault(section, {})
        if not isinstance(child, dict | list):
            raise ConfigError(f"space.{field}: {section!r} is not a section of the run config")
        node = child
    if isinstance(node, list):
        node[_position(node, key, field)] = value
    else:
        node[key] = value


def _position(items: list[Any], name: str, field: str) -> int:
    if not name.isdigit() or int(name) >= len(items):
        raise ConfigError(f"space.{field}: {name!r} is not one of the {len(items)} items of the "
                          "base config's list")  # fmt: skip
    return int(name)


def summary_fields() -> set[str]:
    """The top-level fields of ``eval_summary.json``, from the schema tunix_core ships."""
    text = resources.files("tunix_core").joinpath("schemas", "eval_summary.schema.json").read_text()
    return set(json.loads(text)["properties"])


def _check_objective(objective: str, source: str) -> None:
    """Catch a misspelt objective before any trial runs; a dotted path below a known field
    is checked against each trial's summary (evaluators add their own metrics)."""
    head = objective.split(".")[0]
    if head not in summary_fields():
        raise ConfigError(
            f"{source}: objective: {objective!r} is not in eval_summary.json; use primary_score "
            "or a dotted path to a number, e.g. scorecard.overall.format_compliance"
        )


def _check_prune_on(prune_on: str, base: RunConfig, source: str) -> None:
    """An ``eval/`` metric to prune on must be one the base config's
    ``eval.during_training`` measures; any other name is a training metric of the trainer."""
    if not prune_on.startswith(DURING_TRAINING_PREFIX):
        return
    during = base.eval.during_training
    if during.every is None:
        raise ConfigError(f"{source}: prune_on: {prune_on!r} is never measured: the base config "
                          "evaluates nothing during training; set its eval.during_training.every")  # fmt: skip
    measured = during_training_names(during.split)
    if prune_on not in measured:
        raise ConfigError(f"{source}: prune_on: {prune_on!r} is not measured; the base config's "
                          f"eval.during_training gives {' and '.join(measured)}")  # fmt: skip


def objective_value(summary: Mapping[str, Any], objective: str, where: Path) -> float:
    """The number at dotted path ``objective`` of a run's eval summary. A ConfigError naming
    ``objective`` when the path is not there or holds no number (the sweep file asks for
    something the runs do not have); :class:`TrialFailed` when it is null or not finite
    (this run has no value, e.g. a rate over correct answers when none was correct)."""
    node: Any = summary
    for part in objective.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"objective: {objective!r} is not in {where}")
        node = node[part]
    if node is None:
        raise TrialFailed(f"objective: {objective!r} in {where} is null: the run has no value for it")
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise ConfigError(f"objective: {objective!r} in {where} is not a number, got {node!r}")
    if not math.isfinite(node):
        raise TrialFailed(f"objective: {objective!r} in {where} is {node!r}, not a finite number")
    return float(node)


def run_objective(summary_path: Path, objective: str) -> float:
    """The objective of a finished run from its ``eval_summary.json``: as
    :func:`objective_value`, and :class:`TrialFailed` when the file is missing or unreadable."""
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise TrialFailed(f"{summary_path}: cannot read the run's summary ({exc})") from None
    return objective_value(summary, objective, summary_path)
