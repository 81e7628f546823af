"""The preference losses, as pure functions of sequence log-probabilities.

Each takes, per pair, the summed log-probability of the chosen and of the rejected
completion (``log pi(y_w | x)``, ``log pi(y_l | x)``: model-turn tokens only) and returns
a :class:`PairLoss`: the per-pair losses, whose mean is the objective, and the implicit
rewards of the two completions, whose difference is the margin the metrics report.

- DPO (Rafailov et al. 2023, arXiv:2305.18290)::

      r(y) = beta * (log pi(y|x) - log pi_ref(y|x))
      loss = -log sigmoid(r(y_w) - r(y_l))

- SimPO (Meng et al. 2024, arXiv:2405.14734): no reference, length-normalised::

      r(y) = beta / |y| * log pi(y|x)
      loss = -log sigmoid(r(y_w) - r(y_l) - gamma)

- ORPO (Hong et al. 2024, arXiv:2403.07691): no reference, the chosen completion's
  NLL plus a weighted odds-ratio term, with ``P(y|x) = exp(log pi(y|x) / |y|)``::

      log odds(y) = log P(y|x) - log(1 - P(y|x))
      loss = -log pi(y_w|x) / |y_w| - lambda * log sigmoid(log odds(y_w) - log odds(y_l))
      r(y) = lambda * log pi(y|x) / |y|
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class PairLoss(NamedTuple):
    """Per pair ([N] each): the loss and the implicit rewards of both completions."""

    losses: jax.Array
    chosen_rewards: jax.Array
    rejected_rewards: jax.Array


def dpo_loss(
    chosen_logps: jax.Array,
    rejected_logps: jax.Array,
    ref_chosen_logps: jax.Array,
    ref_rejected_logps: jax.Array,
    *,
    beta: float,
) -> PairLoss:
    """DPO's sigmoid loss (see the module docstring); the reference's log-probabilities
    carry no gradient."""
    chosen = beta * (chosen_logps - jax.lax.stop_gradient(ref_chosen_logps))
    rejected = beta * (rejected_logps - jax.lax.stop_gradient(ref_rejected_logps))
    return PairLoss(-jax.nn.log_sigmoid(chosen - rejected), chosen, rejected)


def simpo_loss(
    chosen_logps: jax.Array,
    rejected_logps: jax.Array,
    chosen_tokens: jax.Array,
    rejected_tokens: jax.Array,
    *,
    beta: float,
    gamma: float,
) -> PairLoss:
    """SimPO's length-normalised loss with target margin ``gamma`` (module docstring)."""
    chosen = beta * chosen_logps / jnp.maximum(chosen_tokens, 1.0)
    rejected = beta * rejected_logps / jnp.maximum(rejected_tokens, 1.0)
    return PairLoss(-jax.nn.log_sigmoid(chosen - rejected - gamma), chosen, rejected)


def log_odds(mean_logps: jax.Array) -> jax.Array:
    """``log(p / (1 - p))`` for ``p = exp(mean_logps)``; ``expm1`` keeps it accurate when
    ``p`` is near 1 (``mean_logps`` near 0)."""
    return mean_logps - jnp.log(-jnp.expm1(mean_logps))


def orpo_loss(
    chosen_logps: jax.Array,
    rejected_logps: jax.Array,
    chosen_tokens: jax.Array,
    rejected_tokens: jax.Array,
    *,
    weight: float,
) -> PairLoss:
    """ORPO: the chosen completion's per-token NLL plus ``weight`` (lambda) times the
    odds-ratio loss (module docstring)."""
    chosen_mean = chosen_logps / jnp.maximum(chosen_tokens, 1.0)
    rejected_mean = rejected_logps / jnp.maximum(rejected_tokens, 1.0)
    odds_ratio = -jax.nn.log_sigmoid(log_odds(chosen_mean) - log_odds(rejected_mean))
    return PairLoss(
        -chosen_mean + weight * odds_ratio, weight * chosen_mean, weight * rejected_mean
    )


def preference_accuracy(loss: PairLoss) -> jax.Array:
    """Per pair: 1 when the chosen completion's reward is the higher, 0 when it is the
    lower, 1/2 on a tie (DPO's first step, where the policy is the reference)."""
    margin = loss.chosen_rewards - loss.rejected_rewards
    return jnp.where(margin > 0, 1.0, jnp.where(margin < 0, 0.0, 0.5))
