import re

import jax.numpy as jnp
import numpy as np
import pytest

from tunix_core.config import TrainingSection
from tunix_jax.training.checkpoint import Checkpointer, error_reason, tree_problem
from tunix_jax.training.optim import build_optimizer


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


def _no_meta_problem(step, meta):
    return None


def _biggest_file(folder):
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def _truncate_half(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _saved(tmp_path, scales):
    """A checkpointer holding one step per scale (steps 1, 2, ...)."""
    checkpointer = Checkpointer(tmp_path / "ckpt", keep=len(scales), async_save=False)
    for step, scale in enumerate(scales, start=1):
        params, opt_state = _state(scale)
        checkpointer.save(step, params, opt_state, {"step": step})
    checkpointer.wait()
    return checkpointer


def test_newest_good_takes_the_latest_when_it_is_sound(tmp_path):
    checkpointer = _saved(tmp_path, [1.0, 2.0])
    blank_params, blank_opt = _state(0.0)
    good, skipped = checkpointer.newest_good(blank_params, blank_opt, _no_meta_problem)
    checkpointer.close()
    assert skipped == [] and good.step == 2 and good.meta == {"step": 2}
    np.testing.assert_array_equal(good.params["layers"][0]["lora_a"], np.full((3, 2), 2.0))


@pytest.mark.parametrize(
    ("damaged", "reason"),
    [
        ("state/d", r"^ValueError: .*(OUT_OF_RANGE|DATA_LOSS)"),  # the array bytes
        ("state/_METADATA", r"^JSONDecodeError: "),  # the tree's layout
        ("meta/metadata", r"^JSONDecodeError: "),  # step, data position, seed
    ],
)
def test_newest_good_falls_back_past_a_truncated_file(tmp_path, damaged, reason):
    checkpointer = _saved(tmp_path, [1.0, 2.0])
    target = tmp_path / "ckpt" / "2" / damaged
    _truncate_half(_biggest_file(target) if target.is_dir() else target)
    blank_params, blank_opt = _state(0.0)
    good, skipped = checkpointer.newest_good(blank_params, blank_opt, _no_meta_problem)
    checkpointer.close()
    assert good.step == 1
    np.testing.assert_array_equal(good.params["norm"], np.arange(4.0))
    assert [s.path for s in skipped] == [tmp_path / "ckpt" / "2"]
    assert re.search(reason, skipped[0].reason) and len(skipped[0].reason) <= 240


def test_newest_good_skips_non_finite_values_and_rejected_meta(tmp_path):
    checkpointer = _saved(tmp_path, [1.0, 2.0, float("nan")])
    blank_params, blank_opt = _state(0.0)
    good, skipped = checkpointer.newest_good(
        blank_params, blank_opt, lambda step, meta: "wrong seed" if step == 2 else None
    )
    checkpointer.close()
    assert good.step == 1
    assert [(s.path.name, s.reason) for s in skipped] == [
        ("3", "['params']['layers'][0]['lora_a'] holds values that are not finite"),
        ("2", "wrong seed"),
    ]


def test_newest_good_skips_a_checkpoint_of_another_shape(tmp_path):
    checkpointer = _saved(tmp_path, [1.0])
    params, _ = _state(0.0)
    params["norm"] = jnp.zeros(5)  # as if the model changed since the checkpoint
    tx, _ = build_optimizer(TrainingSection(), 10)
    good, skipped = checkpointer.newest_good(params, tx.init(params), _no_meta_problem)
    checkpointer.close()
    assert good is None and len(skipped) == 1
    assert "shape: (5,)" in skipped[0].reason and "(4,)" in skipped[0].reason


def test_tree_problem_names_the_leaf_that_differs():
    params, _ = _state(1.0)
    assert tree_problem(params, params) is None
    assert tree_problem(params, {**params, "norm": jnp.zeros(5)}) == (
        "['norm'] is float32[4], expected float32[5]"
    )
    assert "tree differs" in tree_problem(params, {"norm": params["norm"]})
    assert tree_problem({**params, "norm": jnp.array([0.0, np.inf, 0.0, 0.0])}, params) == (
        "['norm'] holds values that are not finite"
    )


def test_error_reason_is_the_innermost_cause_on_one_short_line():
    try:
        try:
            raise ValueError("OUT_OF_RANGE: byte range [1, 9) invalid\n" + "spec " * 500)
        except ValueError as inner:
            raise Exception("Encountered error while reading array index") from inner
    except Exception as exc:
        reason = error_reason(exc)
    assert reason == "ValueError: OUT_OF_RANGE: byte range [1, 9) invalid"
    assert error_reason(RuntimeError("x" * 1000)) == "RuntimeError: " + "x" * 223 + "..."


def test_delete_removes_a_step_so_it_can_be_written_again(tmp_path):
    checkpointer = _saved(tmp_path, [1.0, 2.0])
    _truncate_half(_biggest_file(tmp_path / "ckpt" / "2" / "state"))
    checkpointer.delete(2)
    params, opt_state = _state(3.0)
    checkpointer.save(2, params, opt_state, {"step": 2})
    checkpointer.wait()
    blank_params, blank_opt = _state(0.0)
    good, skipped = checkpointer.newest_good(blank_params, blank_opt, _no_meta_problem)
    checkpointer.close()
    assert skipped == [] and good.step == 2
    np.testing.assert_array_equal(good.params["layers"][0]["lora_a"], np.full((3, 2), 3.0))
