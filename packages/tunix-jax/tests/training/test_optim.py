import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tunix_core.config import TrainingSection
from tunix_jax.training.optim import FINAL_LR_FRACTION, build_optimizer, learning_rate_schedule


def test_warmup_then_cosine_to_a_tenth():
    training = TrainingSection(learning_rate=1e-3, warmup_steps=4, schedule="cosine")
    schedule = learning_rate_schedule(training, total_steps=20)
    rates = [float(schedule(i)) for i in range(20)]
    assert rates[0] == pytest.approx(1e-3 / 5)
    assert rates[:5] == sorted(rates[:5])
    assert max(rates) == pytest.approx(1e-3)
    assert rates[5:] == sorted(rates[5:], reverse=True)
    assert float(schedule(20)) == pytest.approx(1e-3 * FINAL_LR_FRACTION)


def test_linear_and_constant_schedules():
    linear = learning_rate_schedule(TrainingSection(learning_rate=1.0, warmup_steps=0,
                                                    schedule="linear"), 11)  # fmt: skip
    np.testing.assert_allclose([float(linear(i)) for i in (0, 11)], [1.0, FINAL_LR_FRACTION])
    constant = learning_rate_schedule(TrainingSection(learning_rate=0.5, warmup_steps=2,
                                                      schedule="constant"), 10)  # fmt: skip
    assert [float(constant(i)) for i in (2, 9)] == [0.5, 0.5]


@pytest.mark.parametrize("name", ["adamw", "adafactor"])
def test_optimizers_step_and_clip(name):
    training = TrainingSection(optimizer=name, grad_clip=1.0, learning_rate=0.1, warmup_steps=0,
                               weight_decay=0.01)  # fmt: skip
    tx, _ = build_optimizer(training, 10)
    params = {"w": jnp.ones((4, 4))}
    state = tx.init(params)
    updates, _ = tx.update({"w": jnp.full((4, 4), 1e6)}, state, params)
    new = optax.apply_updates(params, updates)
    assert bool(jnp.all(new["w"] < 1.0))
    assert bool(jnp.all(jnp.isfinite(new["w"])))
