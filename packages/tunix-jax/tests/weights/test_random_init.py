"""The counter-based generator of random initial weights (`tunix_jax.weights.random_init`)."""

import math

import numpy as np
import pytest
from flax import nnx

from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.params import expected_shapes, path_str
from tunix_jax.weights import random_init
from tunix_jax.weights.loading import load_model, model_params


def _flat(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flat(value, (*prefix, key))
        else:
            yield (*prefix, key), np.asarray(value)


def test_draws_are_pinned():
    # The generator's first numbers for seed 0: any change to the hash, the key schedule or
    # the transform changes every random model, and must show up here.
    got = np.asarray(random_init.draw(0, "embedder/input_embedding", (2, 3), std=1.0))
    want = np.array(
        [[1.8234748840332031, -0.3237352967262268, 1.339842677116394],
         [-1.1436671018600464, 0.608527421951294, -1.5210163593292236]],
        np.float32,
    )  # fmt: skip
    np.testing.assert_array_equal(got, want)
    assert random_init.stream_key(0, "embedder/input_embedding") == (3883890238, 2315870226)


def test_values_depend_on_seed_name_and_index_only():
    a = np.asarray(random_init.draw(3, "layers/0/attn/q_einsum/w", (4, 64, 16), std=0.5))
    again = np.asarray(random_init.draw(3, "layers/0/attn/q_einsum/w", (4 * 64 * 16,), std=0.5))
    np.testing.assert_array_equal(a.ravel(), again)  # the shape only folds the same stream
    other_seed = np.asarray(random_init.draw(4, "layers/0/attn/q_einsum/w", a.shape, std=0.5))
    other_name = np.asarray(random_init.draw(3, "layers/1/attn/q_einsum/w", a.shape, std=0.5))
    for other in (other_seed, other_name):
        assert abs(np.corrcoef(a.ravel(), other.ravel())[0, 1]) < 0.05


def test_normal_draws_have_the_normal_distribution():
    x = np.asarray(random_init.draw(0, "normal", (1 << 20,), std=2.0), np.float64) / 2.0
    assert abs(x.mean()) < 0.005 and abs(x.std() - 1.0) < 0.005
    assert abs(np.mean(x**4) - 3.0) < 0.05  # the kurtosis of a normal
    for bound in (1.0, 2.0, 3.0):  # tail masses of the standard normal
        want = math.erfc(bound / math.sqrt(2))
        assert abs(np.mean(np.abs(x) > bound) - want) < 0.002 + 0.05 * want
    # 2**23 equally likely values: as many distinct ones as independent draws would give.
    cells = 2**23
    assert len(np.unique(x)) > 0.999 * cells * (1 - math.exp(-x.size / cells))


def test_truncated_draws_stay_within_two_untruncated_deviations():
    std = 0.25
    x = np.asarray(random_init.draw(0, "kernel", (1 << 20,), std=std, truncated=True), np.float64)
    assert abs(x.mean()) < 0.002 and abs(x.std() - std) < 0.002
    bound = 2.0 * std / 0.87962566103423978  # Flax's lecun_normal: +-2 before rescaling
    assert np.abs(x).max() <= bound * (1 + 1e-6)
    assert np.mean(np.abs(x) > 0.95 * bound) > 0.005  # it reaches the bound


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_random_model_draws_each_parameter_as_its_module_initialises_it(preset):
    config = get_config(preset)
    model, _ = load_model(preset, "random", seed=2)
    params = dict(_flat(model_params(model)))
    assert set(params) == set(expected_shapes(config))
    d, h = config.embed_dim, config.head_dim
    fan_in = {"q_einsum": d, "kv_einsum": d, "qkv_einsum": d, "attn_vec_einsum": config.num_heads * h,
              "gate_proj": d, "up_proj": d, "down_proj": config.hidden_dim, "embedder": d}  # fmt: skip
    for path, value in params.items():
        if path[-1] == "scale":
            assert not np.any(value), path
            continue
        module = path[-2] if path[0] != "embedder" else "embedder"
        truncated = path[-1] == "kernel"
        want = random_init.draw(2, path_str(path), value.shape, std=1 / math.sqrt(fan_in[module]),
                                truncated=truncated)  # fmt: skip
        np.testing.assert_array_equal(value, np.asarray(want), err_msg=path_str(path))


def test_random_model_in_bfloat16_rounds_the_float32_draws():
    import jax.numpy as jnp

    f32, _ = load_model("tiny-gemma3", "random", seed=1)
    bf16, _ = load_model("tiny-gemma3", "random", seed=1, dtype=jnp.bfloat16)
    for (path, a), (_, b) in zip(_flat(model_params(f32)), _flat(model_params(bf16)), strict=True):
        assert b.dtype == jnp.bfloat16, path
        np.testing.assert_array_equal(a.astype(jnp.bfloat16), b, err_msg=path_str(path))


def test_random_model_is_seeded():
    a, _ = load_model("tiny-gemma3", "random", seed=5)
    b, _ = load_model("tiny-gemma3", "random", seed=5)
    c, _ = load_model("tiny-gemma3", "random", seed=6)
    first, second, third = (nnx.to_pure_dict(nnx.state(m)) for m in (a, b, c))
    for (path, x), (_, y), (_, z) in zip(_flat(first), _flat(second), _flat(third), strict=True):
        np.testing.assert_array_equal(x, y, err_msg=path_str(path))
        assert path[-1] == "scale" or not np.array_equal(x, z), path


def test_a_batch_draws_each_parameter_as_drawn_alone():
    # One program draws a whole model: each parameter's numbers must not depend on what
    # else is in the batch or where (sizes that fill no whole row included).

    draws = [random_init.Draw("a", (3, 5), 1.0), random_init.Draw("b", (1024,), 0.1, True),
             random_init.Draw("c", (2, 700), 2.0)]  # fmt: skip
    batch = random_init.draw_many(7, draws)
    reversed_batch = random_init.draw_many(7, draws[::-1])[::-1]
    for d, x, y in zip(draws, batch, reversed_batch, strict=True):
        alone = random_init.draw(7, d.name, d.shape, std=d.std, truncated=d.truncated)
        assert x.shape == d.shape
        np.testing.assert_array_equal(np.asarray(x), np.asarray(alone), err_msg=d.name)
        np.testing.assert_array_equal(np.asarray(y), np.asarray(alone), err_msg=d.name)
    # Off the CPU the batch is cut by one jitted program instead of shared: same values.
    whole, rows = random_init._draw_batch(7, draws, np.float32)
    sliced = random_init._slices(whole, tuple(d.shape for d in draws), rows)
    for d, x, y in zip(draws, batch, sliced, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=d.name)
