import jax.numpy as jnp
import numpy as np

from tunix_core.config import TrainingSection
from tunix_jax.train.checkpoint import Checkpointer
from tunix_jax.train.optim import build_optimizer


def _state(scale):
    params = {"layers": {0: {"lora_a": jnp.full((3, 2), scale)}}, "norm": jnp.arange(4.0)}
    tx, _ = build_optimizer(TrainingSection(), 10)
    return params, tx.init(params)


def test_round_trip_keeps_params_optimizer_state_and_meta(tmp_path):
    params, opt_state = _state(1.5)
    checkpointer = Checkpointer(tmp_path / "ckpt", keep=2, async_save=True)
    checkpointer.save(4, params, opt_state, {"step": 4, "data": {"epoch": 1, "cursor": 3}})
    checkpointer.wait()
    blank_params, blank_opt = _state(0.0)
    restored, restored_opt, meta = checkpointer.restore(4, blank_params, blank_opt)
    checkpointer.close()
    np.testing.assert_array_equal(restored["layers"][0]["lora_a"], params["layers"][0]["lora_a"])
    assert meta == {"step": 4, "data": {"epoch": 1, "cursor": 3}}
    assert type(restored_opt) is type(opt_state)


def test_keeps_only_the_latest_checkpoints(tmp_path):
    params, opt_state = _state(1.0)
    checkpointer = Checkpointer(tmp_path / "ckpt", keep=2, async_save=False)
    for step in (1, 2, 3):
        checkpointer.save(step, params, opt_state, {"step": step})
    checkpointer.wait()
    assert checkpointer.all_steps() == [2, 3] and checkpointer.latest_step() == 3
    checkpointer.close()
    assert Checkpointer(tmp_path / "ckpt", keep=2).latest_step() == 3
