"""Next-token cross-entropy on the completion tokens, without materialising the logits.

Gemma's vocabulary has 262,144 entries: the f32 logits of a 4 x 256 batch alone take
1 GiB, and plain autodiff would keep them (and their gradient) for the backward pass.
:func:`chunked_cross_entropy` scans over chunks of the sequence. Under differentiation
each chunk computes its logits once, turns them straight into the gradient with
respect to the hidden states (``(softmax - onehot) x weight``, pulled back through the
LM head) and drops them; the backward pass only scales those stored [B, T, D] gradients.
So at most one chunk's logits exist at any time, and the LM head costs two vocabulary
matmuls per token instead of three (forward, recomputation under ``jax.checkpoint``,
backward). The gradient of the LM-head weights is accumulated the same way when
``table_grad`` is set (full fine-tuning); with LoRA it is never computed.

Both functions return ``(sum of weighted losses, sum of weights)`` so that gradient
accumulation and data parallelism divide by the global token count once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp

LogitsFn = Callable[[jax.Array, jax.Array], jax.Array]
# What the forward pass keeps for the backward one: d hidden, d table, table, targets, weights.
_Residuals = tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]


def _token_losses(logits: jax.Array, targets: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-token loss and the log-sum-exp, in f32."""
    logits = logits.astype(jnp.float32)
    log_norm = jax.nn.logsumexp(logits, axis=-1)
    target_logits = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    return log_norm - target_logits, log_norm


def cross_entropy(
    logits: jax.Array, targets: jax.Array, weights: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The plain version over full logits [..., V]; the reference for the chunked one."""
    weights = weights.astype(jnp.float32)
    losses, _ = _token_losses(logits, targets)
    return jnp.sum(losses * weights), jnp.sum(weights)


def chunked_cross_entropy(
    hidden: jax.Array,
    table: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
    logits_fn: LogitsFn,
    *,
    chunk_tokens: int = 512,
    table_grad: bool = True,
    merge_rows: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Cross-entropy of ``logits_fn(hidden, table)`` against ``targets``, chunk by chunk.

    ``hidden`` is [B, T, D], ``targets``/``weights`` [B, T]; ``table`` is the LM head's
    weight. The sequence axis is cut into chunks of ``max(1, chunk_tokens // B)``
    positions (the last padded with zero weight); the batch axis stays whole so a batch
    sharded over devices stays sharded. Each row's weighted tokens are moved to its front
    and chunks without any weighted token are skipped, so prompt and padding positions
    mostly cost no logits. ``table_grad=False`` treats ``table`` as frozen
    (its cotangent is zero).

    ``merge_rows`` (for a batch on one device): the rows are laid end to end as one row
    first, so the weighted tokens of all rows fill whole chunks of ``chunk_tokens``
    together. Kept apart, every chunk spans all rows, and the row with the most weighted
    tokens sets how many chunks run: the default run's packed 4 x 256 batches (394
    weighted tokens on average) ran about 780 tokens a step through the LM head; merged,
    512.
    """
    if merge_rows:
        batch, length = targets.shape
        return chunked_cross_entropy(
            hidden.reshape(1, batch * length, hidden.shape[-1]), table,
            targets.reshape(1, -1), weights.reshape(1, -1), logits_fn,
            chunk_tokens=chunk_tokens, table_grad=table_grad,
        )  # fmt: skip
    weights = weights.astype(jnp.float32)
    # The loss is a sum over tokens, so moving the weighted ones first does not change it.
    _, (hidden, targets, weights) = counted_first(weights != 0, hidden, targets, weights)
    loss = _fused_loss(logits_fn, chunk_tokens, table_grad, hidden, table, targets, weights)
    return loss, jnp.sum(weights)


def counted_first(counted: jax.Array, *arrays: jax.Array) -> tuple[jax.Array, list[jax.Array]]:
    """Each row's counted positions ([B, T] bool) moved to its front, their order kept (a
    stable sort): the permutation [B, T] and each [B, T, ...] array permuted by it."""
    order = jnp.argsort(~counted, axis=1, stable=True)
    permuted = [jnp.take_along_axis(x, order.reshape(*order.shape, *(1,) * (x.ndim - 2)), axis=1)
                for x in arrays]  # fmt: skip
    return order, permuted


def by_chunk(chunk_tokens: int, *arrays: jax.Array) -> list[jax.Array]:
    """Each [B, T, ...] array cut along T into chunks of ``max(1, chunk_tokens // B)``
    positions (the last one zero-padded): [n, B, chunk, ...], ready for ``lax.scan``."""
    batch, length = arrays[0].shape[:2]
    chunk = max(1, min(length, chunk_tokens // batch))
    num_chunks = -(-length // chunk)
    pad = num_chunks * chunk - length
    result = []
    for x in arrays:
        if pad:
            x = jnp.pad(x, ((0, 0), (0, pad), *((0, 0),) * (x.ndim - 2)))
        result.append(jnp.swapaxes(x.reshape(batch, num_chunks, chunk, *x.shape[2:]), 0, 1))
    return result


def _scan_chunks(
    logits_fn: LogitsFn,
    chunk_tokens: int,
    table_grad: bool,
    hidden: jax.Array,
    table: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
    *,
    with_grads: bool,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
    """(loss sum, d loss / d hidden, d loss / d table) - the gradients only if asked."""
    batch, length, dim = hidden.shape
    chunked_hidden, chunked_targets, chunked_weights = by_chunk(chunk_tokens, hidden, targets,
                                                                weights)  # fmt: skip
    num_chunks, chunk = chunked_hidden.shape[0], chunked_hidden.shape[2]

    def chunk_step(carry: tuple[jax.Array, jax.Array | None], h: jax.Array, t: jax.Array,
                   w: jax.Array) -> tuple[tuple[jax.Array, jax.Array | None], jax.Array]:  # fmt: skip
        loss_sum, table_sum = carry
        if not with_grads:
            losses, _ = _token_losses(logits_fn(h, table), t)
            return (loss_sum + jnp.sum(losses * w), table_sum), jnp.zeros((), h.dtype)
        if table_grad:
            logits, pullback = jax.vjp(logits_fn, h, table)
        else:
            logits, pullback = jax.vjp(lambda x: logits_fn(x, table), h)
        losses, log_norm = _token_losses(logits, t)
        probs = jnp.exp(logits.astype(jnp.float32) - log_norm[..., None])
        onehot = jax.nn.one_hot(t, logits.shape[-1], dtype=jnp.float32)
        d_logits = ((probs - onehot) * w[..., None]).astype(logits.dtype)
        grads = pullback(d_logits)
        if table_grad:
            table_sum = table_sum + grads[1].astype(jnp.float32)
        return (loss_sum + jnp.sum(losses * w), table_sum), grads[0]

    def skip_chunk(carry: tuple[jax.Array, jax.Array | None], h: jax.Array, t: jax.Array,
                   w: jax.Array) -> tuple[tuple[jax.Array, jax.Array | None], jax.Array]:  # fmt: skip
        return carry, jnp.zeros_like(h) if with_grads else jnp.zeros((), h.dtype)

    def body(
        carry: tuple[jax.Array, jax.Array | None], xs: tuple[jax.Array, ...]
    ) -> tuple[tuple[jax.Array, jax.Array | None], jax.Array | None]:
        h, t, w = xs
        # Weighted tokens come first in every row, so trailing chunks are often all prompt
        # or padding: they need no logits at all.
        carry, d_h = jax.lax.cond(jnp.any(w != 0), chunk_step, skip_chunk, carry, h, t, w)
        return carry, d_h if with_grads else None

    table_init = jnp.zeros(table.shape, jnp.float32) if with_grads and table_grad else None
    init = (jnp.zeros((), jnp.float32), table_init)
    (loss, d_table), d_hidden = jax.lax.scan(
        body, init, (chunked_hidden, chunked_targets, chunked_weights)
    )
    if d_hidden is not None:
        d_hidden = jnp.swapaxes(d_hidden, 0, 1).reshape(batch, num_chunks * chunk, dim)
        d_hidden = d_hidden[:, :length]
    return loss, d_hidden, d_table


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _fused_loss(
    logits_fn: LogitsFn,
    chunk_tokens: int,
    table_grad: bool,
    hidden: jax.Array,
    table: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
) -> jax.Array:
    loss, _, _ = _scan_chunks(
        logits_fn, chunk_tokens, table_grad, hidden, table, targets, weights, with_grads=False
    )
    return loss


def _fused_loss_fwd(
    logits_fn: LogitsFn,
    chunk_tokens: int,
    table_grad: bool,
    hidden: jax.Array,
    table: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
) -> tuple[jax.Array, _Residuals]:
    loss, d_hidden, d_table = _scan_chunks(
        logits_fn, chunk_tokens, table_grad, hidden, table, targets, weights, with_grads=True
    )
    assert d_hidden is not None  # with_grads always yields it
    if d_table is None:
        d_table = jnp.zeros((), jnp.float32)  # a frozen table: broadcast to zeros in bwd
    return loss, (d_hidden, d_table, table, targets, weights)


def _fused_loss_bwd(
    logits_fn: LogitsFn,
    chunk_tokens: int,
    table_grad: bool,
    residuals: _Residuals,
    cotangent: jax.Array,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    d_hidden, d_table, table, targets, weights = residuals
    hidden_ct = (d_hidden * cotangent).astype(d_hidden.dtype)
    if table_grad:
        table_ct = (d_table * cotangent).astype(table.dtype)
    else:
        table_ct = jnp.zeros(table.shape, table.dtype)
    targets_ct = jnp.zeros(targets.shape, jax.dtypes.float0)
    return hidden_ct, table_ct, targets_ct, jnp.zeros_like(weights)


_fused_loss.defvjp(_fused_loss_fwd, _fused_loss_bwd)
