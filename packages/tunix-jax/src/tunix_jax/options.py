"""What the ``jax`` plugin reads from the run configuration besides the core sections:
``trainer.options`` of the ``jax`` trainer (:class:`JaxTrainerOptions`) and
``model.options`` of the ``jax`` model backend (:class:`JaxModelOptions`).

Light on purpose: importing this module does not import JAX.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tunix_core.config import FieldRuleError, RunConfig, structure

DEFAULT_LORA_TARGETS: tuple[str, ...] = (
    "q_einsum",
    "kv_einsum",
    "attn_vec_einsum",
    "gate_proj",
    "up_proj",
    "down_proj",
)


def _fraction(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise FieldRuleError(attribute.name, f"must be in [0, 1), got {value!r}")


def _positive_int(_: Any, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value <= 0:
        raise FieldRuleError(attribute.name, f"must be > 0, got {value!r}")


def _one_of(*choices: str) -> Callable[[Any, attrs.Attribute[Any], str], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            allowed = ", ".join(map(repr, choices))
            raise FieldRuleError(attribute.name, f"must be one of {allowed}, got {value!r}")

    return check


def parse_deadline(text: str) -> float:
    """An absolute deadline as Unix seconds: ISO 8601 (``2026-11-25T23:00:00Z``; no zone
    means UTC) or a bare number of Unix seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"must be an ISO 8601 time like '2026-11-25T23:00:00Z' or Unix seconds, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _deadline(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is None:
        return
    try:
        parse_deadline(value)
    except ValueError as exc:
        raise FieldRuleError(attribute.name, str(exc)) from None


@attrs.frozen
class JaxTrainerOptions:
    """Options only the ``jax`` trainer understands (``trainer.options`` in the config).

    ``reserve_fraction``: the share of ``training.time_budget`` (counted from the moment
    ``tunix run`` resolved the trainer) kept free after training for the evaluation and
    packaging stages. Training stops, with a checkpoint, once the next step and the final
    save would cut into it. ``deadline``: an absolute end (ISO 8601 or Unix seconds) that
    is honoured the same way, whichever of it and the budget comes first.
    ``loss_chunk_tokens``: tokens per chunk of the cross-entropy, which bounds the f32
    logits ever held at once to ``loss_chunk_tokens x vocab``.
    ``async_checkpoints``: write checkpoints in the background while training goes on.
    ``progress_bar``: show a tqdm bar on stderr.
    ``compute_dtype``: the activations' dtype while training (parameters stay in
    ``model.dtype``). ``remat``: rematerialisation of the transformer blocks (``none``,
    ``block`` or ``dots``). ``packing``: pack several short examples into one row (they
    never attend to each other). ``lora_targets``: the Gemma projections that get LoRA
    adapters when ``training.lora.enabled``.
    """

    reserve_fraction: float = attrs.field(default=0.15, validator=_fraction)
    deadline: str | None = attrs.field(default=None, validator=_deadline)
    loss_chunk_tokens: int = attrs.field(default=512, validator=_positive_int)
    async_checkpoints: bool = True
    progress_bar: bool = True
    compute_dtype: str = attrs.field(default="float32", validator=_one_of("float32", "bfloat16"))
    remat: str = attrs.field(default="none", validator=_one_of("none", "block", "dots"))
    packing: bool = True
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS

    @property
    def deadline_seconds(self) -> float | None:
        return None if self.deadline is None else parse_deadline(self.deadline)


@attrs.frozen
class JaxModelOptions:
    """Options only the ``jax`` model backend understands (``model.options``): the device
    mesh the model is laid out on, for generation and for training alike.

    ``mesh_data``: devices on the data axis; ``mesh_fsdp``: devices on the FSDP axis that
    shards the parameters. By default every device is on the data axis; when only one is
    given the other takes the remaining devices, and their product must be the device count.
    """

    mesh_data: int | None = attrs.field(default=None, validator=_positive_int)
    mesh_fsdp: int | None = attrs.field(default=None, validator=_positive_int)


def trainer_options(config: RunConfig) -> JaxTrainerOptions:
    """Structure ``config.trainer.options``; a bad value raises a ConfigError naming
    ``trainer.options.<field>``."""
    return structure(
        config.trainer.options, JaxTrainerOptions, source="config", root="trainer.options"
    )


def model_options(options: Mapping[str, Any]) -> JaxModelOptions:
    """Structure ``model.options`` (pass ``config.model.options``); a bad value raises a
    ConfigError naming ``model.options.<field>``."""
    return structure(options, JaxModelOptions, source="config", root="model.options")
