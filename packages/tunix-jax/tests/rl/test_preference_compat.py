"""DPO's loss (and ORPO's, on one-token completions) equals google-tunix's own
``dpo_loss_fn`` on the same log-probabilities. Runs in the nox session ``compat``, which
installs google-tunix==0.1.7.

google-tunix's loss takes a model and computes the log-probabilities itself, so it gets
a stand-in model whose one-token completions have exactly the log-probabilities given:
next-token logits ``[0, x]`` give token 1 the log-probability ``log sigmoid(x)``.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from tunix_jax.rl.preference.losses import dpo_loss, orpo_loss, preference_accuracy

pytestmark = pytest.mark.compat

CHOSEN = np.array([-3.2, -0.7, -5.0, -1.1], np.float32)
REJECTED = np.array([-2.9, -4.1, -5.0, -0.4], np.float32)
REF_CHOSEN = np.array([-3.0, -1.5, -4.0, -1.2], np.float32)
REF_REJECTED = np.array([-3.1, -2.0, -6.5, -0.3], np.float32)


def google_tunix_loss(algorithm: str, **hyper: float):
    """``(loss, aux)`` of google-tunix's ``dpo_loss_fn`` on CHOSEN/REJECTED (and the
    reference's REF_CHOSEN/REF_REJECTED for DPO), each a one-token completion."""
    from flax import nnx
    from tunix.sft.dpo.dpo_trainer import TrainExample, dpo_loss_fn

    class FixedLogProbs(nnx.Module):
        """Row i predicts token 1 after token 0 with log-probability ``logps[i]``."""

        def __init__(self, logps: np.ndarray) -> None:
            logit = logps - np.log(-np.expm1(logps.astype(np.float64)))
            self.logits = nnx.Variable(jnp.stack([jnp.zeros(len(logps)), jnp.asarray(logit)], -1))

        def __call__(self, tokens, positions=None, attention_mask=None, cache=None):
            step = self.logits[...][:, None, :].astype(jnp.float32)
            return jnp.concatenate([step, jnp.zeros_like(step)], axis=1), None

    rows = 2 * len(CHOSEN)  # google-tunix's layout: every chosen row, then every rejected one
    example = TrainExample(
        input_ids=jnp.tile(jnp.array([[0, 1]], jnp.int32), (rows, 1)),
        positions=jnp.tile(jnp.arange(2, dtype=jnp.int32), (rows, 1)),
        attention_mask=jnp.ones((rows, 2, 2), jnp.bool_),
        ref_chosen_logps=jnp.asarray(REF_CHOSEN) if algorithm == "dpo" else None,
        ref_rejected_logps=jnp.asarray(REF_REJECTED) if algorithm == "dpo" else None,
        completion_mask=jnp.ones((rows, 1), jnp.float32),
        logits_to_keep=1,
    )
    model = FixedLogProbs(np.concatenate([CHOSEN, REJECTED]))
    return dpo_loss_fn(model, example, algorithm=algorithm, label_smoothing=0.0, **hyper)


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_equals_google_tunix_dpo_loss_fn(beta):
    theirs, aux = google_tunix_loss("dpo", beta=beta)
    ours = dpo_loss(jnp.asarray(CHOSEN), jnp.asarray(REJECTED), jnp.asarray(REF_CHOSEN),
                    jnp.asarray(REF_REJECTED), beta=beta)  # fmt: skip
    assert float(jnp.mean(ours.losses)) == pytest.approx(float(theirs), abs=1e-5)
    assert float(jnp.mean(ours.chosen_rewards)) == pytest.approx(
        float(aux["rewards/chosen"]), abs=1e-5
    )
    assert float(jnp.mean(ours.rejected_rewards)) == pytest.approx(
        float(aux["rewards/rejected"]), abs=1e-5
    )
    margin = jnp.mean(ours.chosen_rewards - ours.rejected_rewards)
    assert float(margin) == pytest.approx(float(aux["rewards/margin"]), abs=1e-5)
    # No pair here is a tie, where ours counts 1/2 and google-tunix's 0.
    assert float(jnp.mean(preference_accuracy(ours))) == pytest.approx(
        float(aux["rewards/accuracy"])
    )


def test_orpo_loss_equals_google_tunix_on_one_token_completions():
    """google-tunix puts summed log-probabilities in the odds, ORPO's paper (and tunix) the
    per-token mean: the same for one-token completions."""
    theirs, aux = google_tunix_loss("orpo", lambda_orpo=0.2)
    ones = jnp.ones(len(CHOSEN))
    ours = orpo_loss(jnp.asarray(CHOSEN), jnp.asarray(REJECTED), ones, ones, weight=0.2)
    assert float(jnp.mean(ours.losses)) == pytest.approx(float(theirs), abs=1e-5)
    assert float(jnp.mean(ours.chosen_rewards)) == pytest.approx(
        float(aux["rewards/chosen"]), abs=1e-5
    )
