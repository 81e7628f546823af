"""Training in phases (``training.phases``): SFT then GRPO in one run, say.

Each phase is a whole training of its own: its trainer, its ``trainer.options``, its
``training`` fields (the section's, overridden by the phase's), its checkpoints, metrics
and time budget (counted from the phase's start). Phase ``k > 1`` starts from the model
phase ``k - 1`` exported. Every phase but the last writes into
``phases/<k>-<trainer>/`` of the run directory; the last writes the run's own files, so
evaluation and packaging read it as they read any run. A resumed run skips the phases
that exported their model and resumes the one that did not.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from tunix_core.config import RunConfig, TrainerSection, TrainingSection, converter, structure
from tunix_core.errors import ConfigError, DataError
from tunix_core.protocols import Trainer


@attrs.frozen
class PhasePlan:
    """A validated phase: its configuration, and its trainer, made when the phase starts
    (a trainer's time budget counts from its creation)."""

    config: RunConfig
    make_trainer: Callable[[], Trainer]


def phase_configs(config: RunConfig) -> list[RunConfig]:
    """One configuration per phase of ``training.phases`` (without ``phases``); an empty
    list when there are none. Raises a ConfigError naming ``training.phases[i].<field>``."""
    phases = config.training.phases
    if not phases:
        return []
    section: dict[str, Any] = converter.unstructure(config.training)
    allowed = set(section) - {"phases"}
    result = []
    for index, phase in enumerate(phases):
        where = f"training.phases[{index}]"
        if not isinstance(phase, Mapping) or not isinstance(phase.get("trainer"), str):
            raise ConfigError(f"{where}: a phase is a mapping naming its trainer, e.g. "
                              "{trainer: grpo, steps: 50}")  # fmt: skip
        fields = dict(phase)
        trainer = fields.pop("trainer")
        options = fields.pop("options", None)
        for key in fields:
            if key not in allowed:
                raise ConfigError(f"{where}.{key}: not a field of a phase (trainer, options, or "
                                  f"a training field: {', '.join(sorted(allowed))})")  # fmt: skip
        training = structure({**section, **fields, "phases": ()}, TrainingSection,
                             source="config", root=where)  # fmt: skip
        if options is None:
            options = config.trainer.options if trainer == config.trainer.name else {}
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}.options: must be a mapping, got {type(options).__name__}")
        result.append(attrs.evolve(config, trainer=TrainerSection(trainer, dict(options)),
                                   training=training))  # fmt: skip
    return result


def phase_dir_name(index: int, trainer: str) -> str:
    """``<index>-<trainer>`` (1-based): the folder under ``phases/`` of a phase that is
    not the last."""
    return f"{index}-{trainer}"


# Where a field name starts in a message: not inside a word or a path.
_FIELD_START = r"(?<![\w./\\-])"


def _phase_fields(message: str, where: str) -> str:
    """``message`` with the fields a trainer names in its one-phase config named as the
    phase sets them: ``trainer.options.X`` as ``WHERE.options.X``, ``trainer.name`` as
    ``WHERE.trainer`` and ``training.X`` as ``WHERE.X``."""
    message = re.sub(rf"{_FIELD_START}trainer\.options\b", f"{where}.options", message)
    message = re.sub(rf"{_FIELD_START}trainer\.name\b", f"{where}.trainer", message)
    return re.sub(rf"{_FIELD_START}training\.(?!phases\[)", f"{where}.", message)


@contextlib.contextmanager
def naming_phase(index: int) -> Iterator[None]:
    """Around a trainer's ``validate`` or ``train`` of phase ``index`` (0-based): its
    configuration and data errors name ``training.phases[index]``'s fields, which the
    user wrote, not those of the config the phase was turned into."""
    try:
        yield
    except (ConfigError, DataError) as exc:
        named = _phase_fields(str(exc), f"training.phases[{index}]")
        if named == str(exc):
            raise
        raise type(exc)(named) from None
