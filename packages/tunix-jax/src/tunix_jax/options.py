"""What the ``jax`` plugin reads from the run configuration besides the core sections:
``trainer.options`` of the ``jax`` trainer (:class:`JaxTrainerOptions`), of the
``grpo`` trainer (:class:`GrpoTrainerOptions`) and of the preference trainers
(:class:`PreferenceTrainerOptions`), and
``model.options`` of the ``jax`` model backend (:class:`JaxModelOptions`).

Light on purpose: importing this module does not import JAX.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from tunix_core.config import (
    FieldRuleError,
    RunConfig,
    at_least,
    non_negative,
    one_of,
    positive,
    structure,
)

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
    loss_chunk_tokens: int = attrs.field(default=512, validator=positive)
    async_checkpoints: bool = True
    progress_bar: bool = True
    compute_dtype: str = attrs.field(default="float32", validator=one_of("float32", "bfloat16"))
    remat: str = attrs.field(default="none", validator=one_of("none", "block", "dots"))
    packing: bool = True
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS

    @property
    def deadline_seconds(self) -> float | None:
        return None if self.deadline is None else parse_deadline(self.deadline)


def _clip(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 < value < 1.0:
        raise FieldRuleError(attribute.name, f"must be in (0, 1), got {value!r}")


def _top_p(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not 0.0 < value <= 1.0:
        raise FieldRuleError(attribute.name, f"must be in (0, 1], got {value!r}")


def _reward_weights(_: Any, attribute: attrs.Attribute[Any], value: dict[str, float]) -> None:
    if not value:
        raise FieldRuleError(attribute.name, "must name at least one reward")
    for name, weight in value.items():
        if not weight > 0:
            raise FieldRuleError(f"{attribute.name}.{name}", f"must be > 0, got {weight!r}")


# The loss types and reward normalisations of the grpo trainer (docs/rl.md), spelled here
# so that reading the options does not import JAX.
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "gspo")
REWARD_NORMALIZATIONS = ("group", "batch", "per_reward_then_sum")


@attrs.frozen
class GrpoTrainerOptions(JaxTrainerOptions):
    """Options of the ``grpo`` trainer (``trainer.options``): every option of the ``jax``
    trainer (``packing`` does not apply) plus GRPO's own.

    ``num_generations``: completions sampled per prompt (G, the group). ``num_iterations``:
    optimizer updates per batch of samples (mu); above 1 the policy ratio moves away from
    1 and the clip applies. ``beta``: weight of the KL penalty to the reference model (the
    starting model; 0 skips computing it). ``epsilon_low``/``epsilon_high``: the clip range
    ``[1 - low, 1 + high]`` of the policy ratio (DAPO's clip-higher raises only ``high``).
    ``loss_type``: how token losses are averaged and whether the ratio is per token or
    per sequence (``grpo``, ``dr_grpo``, ``dapo``, ``gspo``). ``scale_rewards``: divide
    advantages by the reward std (``null``: off for ``dr_grpo``, on otherwise).
    ``reward_normalization``: ``group``, ``batch`` or ``per_reward_then_sum``.
    ``dynamic_sampling``: drop groups whose rewards are all equal and refill the batch
    with new prompts, at most ``max_refills`` extra sampling rounds per step.
    ``overlong_interval``/``overlong_max_tokens``: DAPO's soft overlong punishment (off
    while ``overlong_interval`` is ``null``; ``overlong_max_tokens`` ``null`` means
    ``max_new_tokens``). ``temperature``, ``top_p``: how completions are sampled
    (log-probabilities use the same temperature). ``max_new_tokens``: completion budget.
    ``mask_truncated``: leave completions that hit ``max_new_tokens`` out of the loss.
    ``rewards``: reward name -> weight (see ``tunix plugins``). ``reward_options``: reward
    name -> that reward's options (the ``judge`` reward's model and rubric).
    """

    num_generations: int = attrs.field(default=4, validator=at_least(2))
    num_iterations: int = attrs.field(default=1, validator=at_least(1))
    beta: float = attrs.field(default=0.04, validator=non_negative)
    epsilon_low: float = attrs.field(default=0.2, validator=_clip)
    epsilon_high: float = attrs.field(default=0.28, validator=_clip)
    loss_type: str = attrs.field(default="dapo", validator=one_of(*LOSS_TYPES))
    scale_rewards: bool | None = None
    reward_normalization: str = attrs.field(default="group",
                                            validator=one_of(*REWARD_NORMALIZATIONS))  # fmt: skip
    dynamic_sampling: bool = False
    max_refills: int = attrs.field(default=3, validator=at_least(0))
    overlong_interval: int | None = attrs.field(default=None, validator=positive)
    overlong_max_tokens: int | None = attrs.field(default=None, validator=positive)
    temperature: float = attrs.field(default=1.0, validator=positive)
    top_p: float | None = attrs.field(default=None, validator=_top_p)
    max_new_tokens: int = attrs.field(default=160, validator=positive)
    mask_truncated: bool = False
    rewards: dict[str, float] = attrs.field(
        factory=lambda: {"format": 0.5, "answer": 1.0}, validator=_reward_weights
    )
    reward_options: dict[str, dict[str, Any]] = attrs.field(factory=dict)

    @property
    def scales_rewards(self) -> bool:
        """Whether advantages are divided by the std: ``scale_rewards``, or by loss type."""
        if self.scale_rewards is None:
            return self.loss_type != "dr_grpo"
        return self.scale_rewards

    @property
    def overlong_limit(self) -> int:
        """The length at which the overlong punishment reaches -1."""
        return self.overlong_max_tokens or self.max_new_tokens


@attrs.frozen
class PreferenceTrainerOptions(JaxTrainerOptions):
    """Options the ``dpo``, ``simpo`` and ``orpo`` trainers share (``trainer.options``):
    every option of the ``jax`` trainer (``packing`` does not apply) plus ``pairs``: the
    preference records, ``PATH``/``jsonl:PATH`` (JSON Lines) or ``hf:PATH`` (local
    Hugging Face data); required (:mod:`tunix_jax.rl.preference.data`)."""

    pairs: str | None = None


@attrs.frozen
class DpoTrainerOptions(PreferenceTrainerOptions):
    """``trainer.options`` of ``dpo``: ``beta`` scales the log-ratios to the reference."""

    beta: float = attrs.field(default=0.1, validator=positive)


@attrs.frozen
class SimpoTrainerOptions(PreferenceTrainerOptions):
    """``trainer.options`` of ``simpo``: ``beta`` scales the length-normalised
    log-probabilities, ``gamma`` is the target reward margin."""

    beta: float = attrs.field(default=2.0, validator=positive)
    gamma: float = attrs.field(default=1.0, validator=non_negative)


@attrs.frozen
class OrpoTrainerOptions(PreferenceTrainerOptions):
    """``trainer.options`` of ``orpo``: ``odds_ratio_weight`` is ORPO's lambda, the weight
    of the odds-ratio term next to the chosen completion's NLL."""

    odds_ratio_weight: float = attrs.field(default=0.1, validator=positive)


@attrs.frozen
class JaxModelOptions:
    """Options only the ``jax`` model backend understands (``model.options``): the device
    mesh the model is laid out on, for generation and for training alike.

    ``mesh_data``: devices on the data axis; ``mesh_fsdp``: devices on the FSDP axis that
    shards the parameters. By default every device is on the data axis; when only one is
    given the other takes the remaining devices, and their product must be the device count.

    ``matmul_dtype``: ``bfloat16`` rounds both operands of every weight matmul
    (projections, MLP, LM head; forward and gradients) to bf16 and sums the products in
    float32; parameters, norms, attention scores and the loss stay in ``model.dtype``.
    About twice the float32 speed on a CPU with AVX512-BF16 and on accelerators;
    generation then also reads the weight matrices as bf16 (half the memory traffic).
    ``auto`` (the default) is ``bfloat16`` on an accelerator or a CPU with native bf16
    dot products and ``float32`` elsewhere (see :mod:`tunix_jax.matmuls`); ``tunix run``
    writes the choice into the run's config and records it in the manifest.
    """

    mesh_data: int | None = attrs.field(default=None, validator=positive)
    mesh_fsdp: int | None = attrs.field(default=None, validator=positive)
    matmul_dtype: str = attrs.field(default="auto", validator=one_of("auto", "float32", "bfloat16"))


def trainer_options(config: RunConfig) -> JaxTrainerOptions:
    """Structure ``config.trainer.options``; a bad value raises a ConfigError naming
    ``trainer.options.<field>``."""
    return structure(
        config.trainer.options, JaxTrainerOptions, source="config", root="trainer.options"
    )


def grpo_options(config: RunConfig) -> GrpoTrainerOptions:
    """Structure ``config.trainer.options`` for the ``grpo`` trainer (errors name
    ``trainer.options.<field>``)."""
    return structure(
        config.trainer.options, GrpoTrainerOptions, source="config", root="trainer.options"
    )


def model_options(options: Mapping[str, Any]) -> JaxModelOptions:
    """Structure ``model.options`` (pass ``config.model.options``); a bad value raises a
    ConfigError naming ``model.options.<field>``."""
    return structure(options, JaxModelOptions, source="config", root="model.options")
