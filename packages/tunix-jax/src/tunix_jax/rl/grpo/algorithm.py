"""GRPO's numerics: group-relative advantages, per-token log-probabilities of sampled
completions, the clipped objective of each loss type with a KL penalty, and the jitted step.

A batch row is one sampled completion after its prompt, right-padded:
``inputs``/``positions`` [B, L] hold ``prompt + completion`` (causal attention never sees
the padding), ``gather`` [B, C] the input positions whose next token is completion token
``j``, ``targets`` [B, C] those tokens and ``mask`` [B, C] which of them count in the loss.
Logits are computed only at the ``C`` completion positions, a chunk at a time.

The objective, per completion token ``t`` of completion ``i`` with advantage ``A_i``::

    ratio_t = exp(logp_t - logp_old_t)                  (gspo: one ratio per completion,
                                                          exp(mean_t(logp_t - logp_old_t)))
    loss_t = -min(ratio_t * A_i, clip(ratio_t, 1 - eps_low, 1 + eps_high) * A_i) + beta * kl_t
    kl_t = exp(logp_ref_t - logp_t) - (logp_ref_t - logp_t) - 1        (k3, always >= 0)

and the loss type decides how the token losses of a step are averaged (|o_i| is
completion ``i``'s counted tokens; the sums run over the whole step, so gradient
accumulation leaves the result unchanged)::

    grpo, gspo:  sum_i (sum_t loss_t / |o_i|) / (completions counted)
    dapo:        sum_i sum_t loss_t / sum_i |o_i|
    dr_grpo:     sum_i sum_t loss_t / (completions x max_completion_tokens)

With one update per batch (``on_policy``) ``logp_old`` is ``logp`` itself with its gradient
stopped, so the ratio is exactly 1.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.options import LOSS_TYPES
from tunix_jax.training.loop import accumulate_gradients, guarded_update
from tunix_jax.training.loss import by_chunk, counted_first

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
# Keys of a GRPO micro-batch; the step's batches stack them on a leading grad_accum axis.
GRPO_BATCH_KEYS = ("inputs", "positions", "gather", "targets", "mask", "advantages",
                   "old_logprobs", "ref_logprobs")  # fmt: skip
# Added to a group's reward std before dividing, so a group of equal rewards stays finite.
STD_EPSILON = 1e-4


def group_advantages(rewards: np.ndarray, group_size: int, *, scale: bool) -> np.ndarray:
    """``rewards`` [N] (N = groups x ``group_size``, a group's completions adjacent) minus
    their group's mean, divided by the group's std plus :data:`STD_EPSILON` when ``scale``.
    A ``NaN`` reward (no reward applied) gets advantage 0 and is left out of its group's
    mean and std. Each group's advantages sum to 0."""
    grouped = np.asarray(rewards, np.float64).reshape(-1, group_size)
    valid = ~np.isnan(grouped)
    count = valid.sum(axis=1, keepdims=True)
    filled = np.where(valid, grouped, 0.0)
    mean = filled.sum(axis=1, keepdims=True) / np.maximum(count, 1)
    centred = np.where(valid, grouped - mean, 0.0)
    if scale:
        std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / np.maximum(count, 1))
        centred = centred / (std + STD_EPSILON)
    return centred.reshape(-1).astype(np.float32)


def batch_advantages(rewards: np.ndarray, group_size: int, *, scale: bool) -> np.ndarray:
    """``rewards`` minus their group's mean, divided by the std of the whole batch's
    rewards plus :data:`STD_EPSILON` when ``scale`` (Liu et al. 2025, "Tricks or Traps":
    the group mean, the batch std). ``NaN`` rewards as in :func:`group_advantages`."""
    centred = group_advantages(rewards, group_size, scale=False).astype(np.float64)
    if scale:
        valid = np.asarray(rewards, np.float64)
        valid = valid[~np.isnan(valid)]
        std = float(valid.std()) if valid.size else 0.0
        centred = centred / (std + STD_EPSILON)
    return centred.astype(np.float32)


def per_reward_advantages(
    by_reward: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    group_size: int,
    *,
    scale: bool,
) -> np.ndarray:
    """Each reward normalised within its group on its own (:func:`group_advantages`),
    then their weighted sum (TRL's ``normalize_then_sum``; GDPO, Liu et al. 2026), so a
    reward with a wide range does not drown one that is 0 or 1."""
    total: np.ndarray | None = None
    for name, weight in weights.items():
        term = weight * group_advantages(by_reward[name], group_size, scale=scale)
        total = term if total is None else total + term
    assert total is not None, "no rewards"
    return total.astype(np.float32)


def advantages_of(
    total: np.ndarray,
    by_reward: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    group_size: int,
    *,
    normalization: str,
    scale: bool,
) -> np.ndarray:
    """The advantages of ``reward_normalization`` (``group``, ``batch`` or
    ``per_reward_then_sum``); a completion whose combined reward ``total`` is NaN (no
    reward applies) gets 0."""
    if normalization == "group":
        return group_advantages(total, group_size, scale=scale)
    if normalization == "batch":
        return batch_advantages(total, group_size, scale=scale)
    if normalization == "per_reward_then_sum":
        summed = per_reward_advantages(by_reward, weights, group_size, scale=scale)
        return np.where(np.isnan(total), 0.0, summed).astype(np.float32)
    raise ValueError(f"unknown reward normalization {normalization!r}")


def uninformative_groups(scores: np.ndarray, group_size: int) -> np.ndarray:
    """[groups] bool: the groups in which every column of ``scores`` [N, K] (the combined
    reward, or each reward) is the same for every completion it applies to, so every
    advantage is 0 and the group teaches nothing (DAPO's dynamic sampling drops them)."""
    grouped = np.asarray(scores, np.float64).reshape(-1, group_size, scores.shape[1])
    high = np.nanmax(np.where(np.isnan(grouped), -np.inf, grouped), axis=1)
    low = np.nanmin(np.where(np.isnan(grouped), np.inf, grouped), axis=1)
    spread = np.where(np.isfinite(high) & np.isfinite(low), high - low, 0.0)
    result: np.ndarray = np.all(spread <= 1e-9, axis=1)
    return result


def overlong_penalty(lengths: Sequence[int], max_tokens: int, interval: int) -> np.ndarray:
    """DAPO's soft overlong punishment (Yu et al. 2025, section 3.4) of completions of
    ``lengths`` tokens: 0 up to ``max_tokens - interval``, then linearly down to -1 at
    ``max_tokens``, and -1 beyond."""
    start = max_tokens - interval
    values = np.asarray(lengths, np.float64)
    return np.clip((start - values) / interval, -1.0, 0.0).astype(np.float32)


def chunked_token_logprobs(
    hidden: jax.Array,
    table: jax.Array,
    targets: jax.Array,
    logits_fn: LogitsFn,
    *,
    temperature: float,
    chunk_tokens: int,
    mask: jax.Array | None = None,
    merge_rows: bool = False,
) -> jax.Array:
    """log softmax(logits_fn(hidden, table) / temperature) at ``targets``: [B, C] in f32.

    The completion axis is cut into chunks of ``max(1, chunk_tokens // B)`` positions and
    each chunk is rematerialised under differentiation, so at most one chunk's
    [B, chunk, vocab] logits exist at a time, in the forward and the backward pass.

    With ``mask`` [B, C], only the positions where it is non-zero are computed (the others
    are 0): each row's counted positions move to its front, and chunks without one cost
    no logits. ``merge_rows`` (a batch on one device) lays the rows end to end first, so
    the counted positions of all rows fill whole chunks of ``chunk_tokens`` together;
    kept apart, the longest completion sets how many chunks run for every row."""
    batch, length = hidden.shape[:2]
    if merge_rows:
        merged = chunked_token_logprobs(
            hidden.reshape(1, batch * length, hidden.shape[-1]), table, targets.reshape(1, -1),
            logits_fn, temperature=temperature, chunk_tokens=chunk_tokens,
            mask=None if mask is None else mask.reshape(1, -1),
        )  # fmt: skip
        return merged.reshape(batch, length)
    counted = jnp.ones(targets.shape, bool) if mask is None else mask != 0
    order, sorted_rows = counted_first(counted, hidden, targets, counted)
    chunked_hidden, chunked_targets, chunked_counted = by_chunk(chunk_tokens, *sorted_rows)
    num_chunks, chunk = chunked_hidden.shape[0], chunked_hidden.shape[2]

    @jax.checkpoint
    def one_chunk(h: jax.Array, t: jax.Array) -> jax.Array:
        logits = logits_fn(h, table).astype(jnp.float32) / temperature
        logprobs = jax.nn.log_softmax(logits, axis=-1)
        return jnp.take_along_axis(logprobs, t[..., None], axis=-1)[..., 0]

    def skip_chunk(h: jax.Array, t: jax.Array) -> jax.Array:
        return jnp.zeros(t.shape, jnp.float32)

    def body(xs: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
        h, t, c = xs
        chunk_logprobs: jax.Array = jax.lax.cond(jnp.any(c), one_chunk, skip_chunk, h, t)
        return chunk_logprobs

    per_chunk = jax.lax.map(body, (chunked_hidden, chunked_targets, chunked_counted))
    logprobs = jnp.swapaxes(per_chunk, 0, 1).reshape(batch, num_chunks * chunk)[:, :length]
    inverse = jnp.argsort(order, axis=1)  # puts the counted positions back
    return jnp.where(counted, jnp.take_along_axis(logprobs, inverse, axis=1), 0.0)


def completion_logprobs(
    model: Transformer,
    batch: dict[str, jax.Array],
    logits_fn: LogitsFn,
    *,
    temperature: float,
    chunk_tokens: int,
    merge_rows: bool = False,
) -> jax.Array:
    """[B, C]: each counted completion token's log-probability under ``model``, 0 where
    ``batch["mask"]`` is 0 (see the module docstring for the batch)."""
    hidden = model.hidden_states(batch["inputs"], batch["positions"], None)
    at_completion = jnp.take_along_axis(hidden, batch["gather"][..., None], axis=1)
    return chunked_token_logprobs(
        at_completion,
        model.embedder.input_embedding[...],
        batch["targets"],
        logits_fn,
        temperature=temperature,
        chunk_tokens=chunk_tokens,
        mask=batch["mask"],
        merge_rows=merge_rows,
    )


@attrs.frozen
class Objective:
    """The loss: its type (:data:`LOSS_TYPES`), the policy ratio's clip range
    ``[1 - low, 1 + high]``, the KL weight ``beta`` and ``max_completion_tokens`` (the
    constant of ``dr_grpo``'s normalisation)."""

    low: float
    high: float
    beta: float
    loss_type: str = "dapo"
    max_completion_tokens: int = 1

    def __attrs_post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}, "
                             f"got {self.loss_type!r}")  # fmt: skip


def token_objective(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    ref_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    objective: Objective,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(the loss's numerator: the masked per-token losses weighted as the loss type wants,
    summed; sums for the normaliser and the metrics: ``tokens``, ``sequences`` (rows with
    a counted token), ``rows``, ``kl``, ``clipped`` tokens and ``ratio``). Inputs [B, C]
    except ``advantages`` [B]. :func:`normaliser` of the step's sums divides it."""
    mask = mask.astype(jnp.float32)
    lengths = jnp.sum(mask, axis=1, keepdims=True)
    log_ratio = logprobs - old_logprobs
    if objective.loss_type == "gspo":
        # One importance ratio per completion: the geometric mean of its token ratios.
        log_ratio = jnp.sum(log_ratio * mask, axis=1, keepdims=True) / jnp.maximum(lengths, 1.0)
        log_ratio = jnp.broadcast_to(log_ratio, logprobs.shape)
    ratio = jnp.exp(log_ratio)
    advantage = advantages[:, None]
    clipped_ratio = jnp.clip(ratio, 1.0 - objective.low, 1.0 + objective.high)
    policy_loss = -jnp.minimum(ratio * advantage, clipped_ratio * advantage)
    if objective.beta:
        log_ref_over_policy = ref_logprobs - logprobs
        kl = jnp.exp(log_ref_over_policy) - log_ref_over_policy - 1.0
    else:
        kl = jnp.zeros_like(logprobs)
    per_token = policy_loss + objective.beta * kl
    # The clip is active where the clipped term is the smaller one: it cut the gradient.
    clipped = ((advantage > 0) & (ratio > 1.0 + objective.high)) | (
        (advantage < 0) & (ratio < 1.0 - objective.low)
    )
    # grpo and gspo average each completion's tokens first; the others sum them.
    per_sequence = objective.loss_type in ("grpo", "gspo")
    weight = mask / jnp.maximum(lengths, 1.0) if per_sequence else mask
    sums = {
        "tokens": jnp.sum(mask),
        "sequences": jnp.sum(lengths > 0).astype(jnp.float32),
        "rows": jnp.asarray(mask.shape[0], jnp.float32),
        "kl": jnp.sum(kl * mask),
        "clipped": jnp.sum(clipped * mask),
        "ratio": jnp.sum(ratio * mask),
    }
    return jnp.sum(per_token * weight), sums


def normaliser(objective: Objective, sums: Mapping[str, jax.Array]) -> jax.Array:
    """What the summed numerator of a step is divided by (see the module docstring):
    counted completions (``grpo``, ``gspo``), counted tokens (``dapo``) or completions
    times ``max_completion_tokens`` (``dr_grpo``); at least 1."""
    if objective.loss_type == "dapo":
        value = sums["tokens"]
    elif objective.loss_type == "dr_grpo":
        value = sums["rows"] * objective.max_completion_tokens
    else:
        value = sums["sequences"]
    return jnp.maximum(value, 1.0)


def objective_loss(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    ref_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    objective: Objective,
) -> jax.Array:
    """The loss of one batch on its own: :func:`token_objective` over :func:`normaliser`."""
    numerator, sums = token_objective(logprobs, old_logprobs, ref_logprobs, advantages, mask,
                                      objective)  # fmt: skip
    return numerator / normaliser(objective, sums)


def make_grpo_step(
    graphdef: nnx.GraphDef[Transformer],
    template: Any,
    tx: optax.GradientTransformation,
    logits_fn: Callable[[Transformer], LogitsFn],
    objective: Objective,
    *,
    temperature: float,
    chunk_tokens: int,
    on_policy: bool,
    merge_rows: bool = False,
) -> Callable[..., Any]:
    """``step(params, opt_state, frozen, batches) -> (params, opt_state, metrics)``, every
    leaf of ``batches`` [grad_accum, ...]. ``on_policy``: the batch was sampled from these
    very params (one update per batch), so ``old_logprobs`` is not read. ``merge_rows``:
    see :func:`chunked_token_logprobs` (for a batch on one device)."""

    def micro_loss(
        params: Any, frozen: nnx.State[Any, Any], batch: dict[str, jax.Array]
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        model = merged_model(graphdef, template, params, frozen)
        logprobs = completion_logprobs(model, batch, logits_fn(model), temperature=temperature,
                                       chunk_tokens=chunk_tokens, merge_rows=merge_rows)  # fmt: skip
        old = jax.lax.stop_gradient(logprobs) if on_policy else batch["old_logprobs"]
        return token_objective(logprobs, old, batch["ref_logprobs"], batch["advantages"],
                               batch["mask"], objective)  # fmt: skip

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def step(
        params: Any, opt_state: Any, frozen: nnx.State[Any, Any], batches: dict[str, jax.Array]
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        (loss_sum, sums), grads = accumulate_gradients(grad_fn, params, frozen, batches)
        tokens = jnp.maximum(sums["tokens"], 1.0)
        divisor = normaliser(objective, sums)
        grads = jax.tree.map(lambda g: g / divisor, grads)
        loss = loss_sum / divisor
        new_params, new_opt_state, grad_norm = guarded_update(tx, grads, opt_state, params, loss)
        metrics = {
            "loss": loss,
            "grad_norm": grad_norm,
            "tokens": sums["tokens"],
            "kl": sums["kl"] / tokens,
            "clip_fraction": sums["clipped"] / tokens,
            "ratio": sums["ratio"] / tokens,
        }
        return new_params, new_opt_state, metrics

    return step


def make_logprobs_fn(
    graphdef: nnx.GraphDef[Transformer],
    template: Any,
    logits_fn: Callable[[Transformer], LogitsFn],
    *,
    temperature: float,
    chunk_tokens: int,
    merge_rows: bool = False,
) -> Callable[..., jax.Array]:
    """``logprobs(params, frozen, batch) -> [B, C]`` without gradients: the old policy's
    log-probabilities (several updates per batch) and the reference model's."""

    def logprobs(params: Any, frozen: nnx.State[Any, Any], batch: dict[str, jax.Array]) -> jax.Array:
        model = merged_model(graphdef, template, params, frozen)
        return completion_logprobs(model, batch, logits_fn(model), temperature=temperature,
                                   chunk_tokens=chunk_tokens, merge_rows=merge_rows)  # fmt: skip

    return logprobs


def merged_model(
    graphdef: nnx.GraphDef[Transformer], template: Any, params: Any, frozen: nnx.State[Any, Any]
) -> Transformer:
    """The model with trainable ``params`` (a pure dict laid out like ``template``)."""
    trainable = jax.tree.map(lambda x: x, template)
    nnx.replace_by_pure_dict(trainable, params)
    model: Transformer = nnx.merge(graphdef, trainable, frozen)
    return model


def build_rows(
    prompts: list[list[int]],
    completions: list[list[int]],
    counted: list[bool],
    *,
    pad_id: int,
    length: int,
    completion_length: int,
) -> dict[str, np.ndarray]:
    """The host arrays of one micro-batch (see the module docstring) for token lists of
    prompts and completions, padded to ``length`` inputs and ``completion_length``
    completion tokens. ``counted[i]`` False leaves completion ``i`` out of the loss.
    A row ``prompt + completion`` predicts completion token ``j`` from input position
    ``len(prompt) - 1 + j``."""
    rows = len(prompts)
    inputs = np.full((rows, length), pad_id, np.int32)
    gather = np.zeros((rows, completion_length), np.int32)
    targets = np.zeros((rows, completion_length), np.int32)
    mask = np.zeros((rows, completion_length), np.float32)
    for row, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        tokens = [*prompt, *completion]
        if len(tokens) > length + 1 or len(completion) > completion_length:
            raise ValueError(f"row {row}: {len(tokens)} tokens do not fit {length} inputs")
        inputs[row, : min(len(tokens), length)] = tokens[:length]
        start = len(prompt) - 1
        gather[row, : len(completion)] = np.arange(start, start + len(completion))
        targets[row, : len(completion)] = completion
        mask[row, : len(completion)] = 1.0 if counted[row] else 0.0
    positions = np.broadcast_to(np.arange(length, dtype=np.int32), (rows, length)).copy()
    return {"inputs": inputs, "positions": positions, "gather": gather, "targets": targets,
            "mask": mask}  # fmt: skip
