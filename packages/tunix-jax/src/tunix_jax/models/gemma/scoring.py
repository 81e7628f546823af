"""Log-probabilities of given completions under a model (teacher forcing): what GRPO's
policy ratio and distillation's targets are made of."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_jax.models.gemma.sampler import bucket
from tunix_jax.models.gemma.transformer import Transformer


@nnx.jit
def _next_token_logprobs(model: Transformer, tokens: jax.Array) -> jax.Array:
    """[1, T-1]: log p(tokens[t + 1] | tokens[: t + 1]) in float32."""
    positions = jnp.arange(tokens.shape[1], dtype=jnp.int32)[None, :]
    logits, _ = model(tokens, positions)
    logprobs = jax.nn.log_softmax(logits[:, :-1].astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(logprobs, tokens[:, 1:, None], axis=-1)[..., 0]


def completion_logprobs(
    model: Transformer,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
) -> list[float]:
    """Per row, the summed log-probability of ``completion_ids`` following ``prompt_ids``.

    One row per forward pass, padded at the end to a bucketed length (causal attention
    keeps trailing padding from changing earlier positions): the logits of a long row over
    a 262k vocabulary are the memory bound, not the batch.
    """
    scores = []
    for prompt, completion in zip(prompt_ids, completion_ids, strict=True):
        if not completion:
            scores.append(0.0)
            continue
        row = [*prompt, *completion]
        tokens = np.zeros((1, bucket(len(row), 8)), dtype=np.int32)
        tokens[0, : len(row)] = row
        logprobs = np.asarray(_next_token_logprobs(model, jnp.asarray(tokens)))[0]
        # Position t predicts token t + 1: the completion's tokens are predicted from
        # len(prompt) - 1 up to len(row) - 2.
        scores.append(float(logprobs[len(prompt) - 1 : len(row) - 1].sum()))
    return scores
