"""GRPO's numerics: group-relative advantages, per-token log-probabilities of sampled
completions, the clipped token-level objective with a KL penalty, and the jitted step.

A batch row is one sampled completion after its prompt, right-padded:
``inputs``/``positions`` [B, L] hold ``prompt + completion`` (causal attention never sees
the padding), ``gather`` [B, C] the input positions whose next token is completion token
``j``, ``targets`` [B, C] those tokens and ``mask`` [B, C] which of them count in the loss.
Logits are computed only at the ``C`` completion positions, a chunk at a time.

The objective, per completion token ``t`` of a completion with advantage ``A``::

    ratio = exp(logp - logp_old)
    loss_t = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A) + beta * kl_t
    kl_t = exp(logp_ref - logp) - (logp_ref - logp) - 1        (k3, always >= 0)

summed over every counted token of the step and divided once by their number (the
token-level loss of DAPO: long completions are not down-weighted per token, and gradient
accumulation leaves the result unchanged). With one update per batch (``on_policy``)
``logp_old`` is ``logp`` itself with its gradient stopped, so the ratio is exactly 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.training.loop import accumulate_gradients, guarded_update
from tunix_jax.training.loss import by_chunk

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


def chunked_token_logprobs(
    hidden: jax.Array,
    table: jax.Array,
    targets: jax.Array,
    logits_fn: LogitsFn,
    *,
    temperature: float,
    chunk_tokens: int,
) -> jax.Array:
    """log softmax(logits_fn(hidden, table) / temperature) at ``targets``: [B, C] in f32.

    The completion axis is cut into chunks of ``max(1, chunk_tokens // B)`` positions and
    each chunk is rematerialised under differentiation, so at most one chunk's
    [B, chunk, vocab] logits exist at a time, in the forward and the backward pass."""
    batch, length = hidden.shape[:2]
    chunked_hidden, chunked_targets = by_chunk(chunk_tokens, hidden, targets)
    num_chunks, chunk = chunked_hidden.shape[0], chunked_hidden.shape[2]

    @jax.checkpoint
    def one_chunk(h: jax.Array, t: jax.Array) -> jax.Array:
        logits = logits_fn(h, table).astype(jnp.float32) / temperature
        logprobs = jax.nn.log_softmax(logits, axis=-1)
        return jnp.take_along_axis(logprobs, t[..., None], axis=-1)[..., 0]

    per_chunk = jax.lax.map(lambda xs: one_chunk(*xs), (chunked_hidden, chunked_targets))
    return jnp.swapaxes(per_chunk, 0, 1).reshape(batch, num_chunks * chunk)[:, :length]


def completion_logprobs(
    model: Transformer,
    batch: dict[str, jax.Array],
    logits_fn: LogitsFn,
    *,
    temperature: float,
    chunk_tokens: int,
) -> jax.Array:
    """[B, C]: each completion token's log-probability under ``model`` (see the module
    docstring for the batch)."""
    hidden = model.hidden_states(batch["inputs"], batch["positions"], None)
    at_completion = jnp.take_along_axis(hidden, batch["gather"][..., None], axis=1)
    return chunked_token_logprobs(
        at_completion,
        model.embedder.input_embedding[...],
        batch["targets"],
        logits_fn,
        temperature=temperature,
        chunk_tokens=chunk_tokens,
    )


@attrs.frozen
class Clip:
    """The policy ratio's clip range ``[1 - low, 1 + high]`` and the KL weight ``beta``."""

    low: float
    high: float
    beta: float


def token_objective(
    logprobs: jax.Array,
    old_logprobs: jax.Array,
    ref_logprobs: jax.Array,
    advantages: jax.Array,
    mask: jax.Array,
    clip: Clip,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(sum of the masked per-token losses, sums for the metrics: ``tokens``, ``kl``,
    ``clipped`` tokens and ``ratio``). Inputs [B, C] except ``advantages`` [B]."""
    mask = mask.astype(jnp.float32)
    ratio = jnp.exp(logprobs - old_logprobs)
    advantage = advantages[:, None]
    clipped_ratio = jnp.clip(ratio, 1.0 - clip.low, 1.0 + clip.high)
    policy_loss = -jnp.minimum(ratio * advantage, clipped_ratio * advantage)
    if clip.beta:
        log_ref_over_policy = ref_logprobs - logprobs
        kl = jnp.exp(log_ref_over_policy) - log_ref_over_policy - 1.0
    else:
        kl = jnp.zeros_like(logprobs)
    per_token = policy_loss + clip.beta * kl
    # The clip is active where the clipped term is the smaller one: it cut the gradient.
    clipped = ((advantage > 0) & (ratio > 1.0 + clip.high)) | (
        (advantage < 0) & (ratio < 1.0 - clip.low)
    )
    sums = {
        "tokens": jnp.sum(mask),
        "kl": jnp.sum(kl * mask),
        "clipped": jnp.sum(clipped * mask),
        "ratio": jnp.sum(ratio * mask),
    }
    return jnp.sum(per_token * mask), sums


def make_grpo_step(
    graphdef: nnx.GraphDef[Transformer],
    template: Any,
    tx: optax.GradientTransformation,
    logits_fn: Callable[[Transformer], LogitsFn],
    clip: Clip,
    *,
    temperature: float,
    chunk_tokens: int,
    on_policy: bool,
) -> Callable[..., Any]:
    """``step(params, opt_state, frozen, batches) -> (params, opt_state, metrics)``, every
    leaf of ``batches`` [grad_accum, ...]. ``on_policy``: the batch was sampled from these
    very params (one update per batch), so ``old_logprobs`` is not read."""

    def micro_loss(
        params: Any, frozen: nnx.State[Any, Any], batch: dict[str, jax.Array]
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        model = merged_model(graphdef, template, params, frozen)
        logprobs = completion_logprobs(model, batch, logits_fn(model),
                                       temperature=temperature, chunk_tokens=chunk_tokens)  # fmt: skip
        old = jax.lax.stop_gradient(logprobs) if on_policy else batch["old_logprobs"]
        return token_objective(logprobs, old, batch["ref_logprobs"], batch["advantages"],
                               batch["mask"], clip)  # fmt: skip

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def step(
        params: Any, opt_state: Any, frozen: nnx.State[Any, Any], batches: dict[str, jax.Array]
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        (loss_sum, sums), grads = accumulate_gradients(grad_fn, params, frozen, batches)
        tokens = jnp.maximum(sums["tokens"], 1.0)
        grads = jax.tree.map(lambda g: g / tokens, grads)
        loss = loss_sum / tokens
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
) -> Callable[..., jax.Array]:
    """``logprobs(params, frozen, batch) -> [B, C]`` without gradients: the old policy's
    log-probabilities (several updates per batch) and the reference model's."""

    def logprobs(params: Any, frozen: nnx.State[Any, Any], batch: dict[str, jax.Array]) -> jax.Array:
        model = merged_model(graphdef, template, params, frozen)
        return completion_logprobs(model, batch, logits_fn(model),
                                   temperature=temperature, chunk_tokens=chunk_tokens)  # fmt: skip

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
