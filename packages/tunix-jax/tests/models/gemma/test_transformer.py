import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.params import expected_shapes, path_str
from tunix_jax.models.gemma.transformer import Transformer

TOKENS = jnp.array([[5, 17, 300, 42, 9, 77, 123, 64, 31, 2, 250, 8, 99, 400]], jnp.int32)
POSITIONS = jnp.arange(TOKENS.shape[1])[None]


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_parameter_tree_is_the_tunix_layout(preset):
    cfg = get_config(preset)
    model = Transformer(cfg, rngs=nnx.Rngs(0))
    state = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    got = {"/".join(str(getattr(k, "key", k)) for k in path): v.shape for path, v in leaves}
    want = {path_str(path): shape for path, shape in expected_shapes(cfg).items()}
    assert got == want
    post = "post_attention_norm" if preset == "tiny-gemma3" else "post_attn_norm"
    assert f"layers/0/{post}/scale" in got
    assert ("layers/0/attn/_query_norm/scale" in got) == (preset == "tiny-gemma3")


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_default_mask_is_causal_with_window(preset, tiny_model):
    model, _ = tiny_model(preset)
    logits, cache = model(TOKENS, POSITIONS)
    assert cache is None and logits.shape == (1, 14, 512)
    t = TOKENS.shape[1]
    causal = (jnp.arange(t)[None, :] <= jnp.arange(t)[:, None])[None]
    explicit, _ = model(TOKENS, POSITIONS, causal)
    np.testing.assert_allclose(logits, explicit, atol=1e-5)
    # Changing a future token leaves earlier logits unchanged.
    changed = TOKENS.at[0, 10].set(1)
    later, _ = model(changed, POSITIONS)
    np.testing.assert_allclose(later[0, :10], logits[0, :10], atol=1e-5)
    assert not np.allclose(later[0, 10:], logits[0, 10:], atol=1e-3)


def test_sliding_window_limits_local_layers(tiny_model):
    model, _ = tiny_model("tiny-gemma2")
    # Make every layer local: a token further back than the window cannot matter.
    for block in model.layers:
        block.is_local = True
        block.attn.is_local = True
    window = model.config.sliding_window
    base, _ = model(TOKENS, POSITIONS)
    far = TOKENS.at[0, 0].set(7)  # more than `window` tokens before the last position
    far_logits, _ = model(far, POSITIONS)
    # One block widens the receptive field by window - 1; 4 layers reach back 28 > 13.
    assert model.config.num_layers * (window - 1) > TOKENS.shape[1]
    assert not np.allclose(far_logits[0, -1], base[0, -1], atol=1e-4)
    one_layer = nnx.List([model.layers[0]])
    model.layers = one_layer
    base, _ = model(TOKENS, POSITIONS)
    far_logits, _ = model(far, POSITIONS)
    np.testing.assert_allclose(far_logits[0, window:], base[0, window:], atol=1e-5)
    assert not np.allclose(far_logits[0, window - 1], base[0, window - 1], atol=1e-4)


def test_final_softcap_bounds_gemma2_logits(tiny_model):
    model, _ = tiny_model("tiny-gemma2")
    model.embedder.input_embedding[...] = model.embedder.input_embedding[...] * 50
    logits, _ = model(TOKENS, POSITIONS)
    assert float(jnp.max(jnp.abs(logits))) <= 30.0
    assert float(jnp.max(jnp.abs(logits))) > 20.0


@pytest.mark.parametrize("remat", ["block", "dots"])
def test_hidden_states_remat_and_gradients(remat, tiny_model):
    model, _ = tiny_model("tiny-gemma3")
    logits, _ = model(TOKENS, POSITIONS)
    hidden = model.hidden_states(TOKENS, POSITIONS)
    np.testing.assert_allclose(model.logits_from_hidden(hidden), logits, atol=1e-5)

    remat_model = Transformer(model.config, rngs=nnx.Rngs(0), remat=remat)
    nnx.update(remat_model, nnx.state(model, nnx.Param))

    def loss(m):
        out, _ = m(TOKENS, POSITIONS)
        return jnp.mean(jax.nn.logsumexp(out, axis=-1))

    grads = nnx.jit(nnx.grad(loss))(model)
    remat_grads = nnx.jit(nnx.grad(loss))(remat_model)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(remat_grads), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_cached_forward_matches_full_forward(tiny_model):
    model, _ = tiny_model("tiny-gemma3")
    full, _ = model(TOKENS, POSITIONS)
    cache = model.init_cache(1, 16)
    split = 9
    slots = jnp.arange(16)
    mask = (slots[None, :] <= jnp.arange(split)[:, None])[None]
    first, cache = model(TOKENS[:, :split], POSITIONS[:, :split], mask, cache)
    assert int(cache["index"]) == split
    steps = []
    for t in range(split, TOKENS.shape[1]):
        step_mask = (slots <= t)[None, None, :]
        out, cache = model(TOKENS[:, t : t + 1], POSITIONS[:, t : t + 1], step_mask, cache)
        steps.append(out[0, 0])
    np.testing.assert_allclose(first[0], full[0, :split], atol=1e-4)
    np.testing.assert_allclose(jnp.stack(steps), full[0, split:], atol=1e-4)


def test_last_only_prefill_gives_the_last_position_and_the_same_cache(tiny_model):
    model, _ = tiny_model("tiny-gemma3")
    full, full_cache = model(TOKENS, POSITIONS, None, model.init_cache(1, 16))
    last, last_cache = model(TOKENS, POSITIONS, None, model.init_cache(1, 16), last_only=True)
    assert last.shape == (1, 1, full.shape[-1])
    np.testing.assert_allclose(last[0, 0], full[0, -1], atol=1e-5)
    for a, b in zip(jax.tree.leaves(full_cache), jax.tree.leaves(last_cache), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bfloat16_model_runs():
    cfg = get_config("tiny-gemma3")
    model = Transformer(cfg, rngs=nnx.Rngs(0), dtype=jnp.bfloat16, param_dtype=jnp.bfloat16)
    f32 = Transformer(cfg, rngs=nnx.Rngs(0))
    nnx.update(model, jax.tree.map(lambda x: x.astype(jnp.bfloat16), nnx.state(f32, nnx.Param)))
    forward = nnx.jit(lambda m: m(TOKENS, POSITIONS)[0])
    logits, reference = forward(model), forward(f32)
    assert logits.dtype == jnp.bfloat16
    assert float(jnp.max(jnp.abs(logits.astype(jnp.float32) - reference))) < 0.15
