import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.training.loop import model_logits_fn
from tunix_jax.training.loss import chunked_cross_entropy, cross_entropy


def _problem(batch=3, length=10, dim=8, vocab=50, seed=0):
    keys = jax.random.split(jax.random.key(seed), 4)
    hidden = jax.random.normal(keys[0], (batch, length, dim))
    table = jax.random.normal(keys[1], (vocab, dim))
    targets = jax.random.randint(keys[2], (batch, length), 0, vocab)
    weights = (jax.random.uniform(keys[3], (batch, length)) > 0.3).astype(jnp.float32)
    return hidden, table, targets, weights


def _softcapped(h, table):
    return jnp.tanh((h @ table.T) / 30.0) * 30.0


@pytest.mark.parametrize(
    ("chunk_tokens", "table_grad", "merge_rows"),
    [(3, True, False), (7, False, False), (1000, True, False), (4, True, True), (7, False, True)],
)
def test_chunked_equals_plain_in_value_and_gradient(chunk_tokens, table_grad, merge_rows):
    hidden, table, targets, weights = _problem()

    def plain(h, t):
        return cross_entropy(_softcapped(h, t), targets, weights)[0]

    def chunked(h, t):
        return chunked_cross_entropy(h, t, targets, weights, _softcapped, chunk_tokens=chunk_tokens,
                                     table_grad=table_grad, merge_rows=merge_rows)[0]  # fmt: skip

    np.testing.assert_allclose(jax.jit(chunked)(hidden, table), plain(hidden, table), rtol=1e-6)
    grads_a = jax.grad(plain, argnums=(0, 1))(hidden, table)
    grads_b = jax.jit(jax.grad(chunked, argnums=(0, 1)))(hidden, table)
    np.testing.assert_allclose(grads_b[0], grads_a[0], rtol=1e-5, atol=1e-6)
    if table_grad:
        np.testing.assert_allclose(grads_b[1], grads_a[1], rtol=1e-5, atol=1e-6)
    else:
        assert not np.any(grads_b[1])
    # The weight count is exact, and a scaled objective scales the gradient.
    count = chunked_cross_entropy(hidden, table, targets, weights, _softcapped)[1]
    assert float(count) == float(weights.sum())
    scaled = jax.grad(lambda h: 0.5 * chunked(h, table))(hidden)
    np.testing.assert_allclose(scaled, 0.5 * grads_b[0], rtol=1e-6)


def test_plain_loss_is_the_negative_log_likelihood_of_weighted_targets():
    logits = jnp.log(jnp.asarray([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]]))
    loss, count = cross_entropy(logits, jnp.asarray([[0, 2]]), jnp.asarray([[1.0, 0.0]]))
    np.testing.assert_allclose(loss, -np.log(0.5), rtol=1e-6)
    assert float(count) == 1.0


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_the_trainer_logits_are_the_model_logits(preset):
    model = Transformer(get_config(preset), rngs=nnx.Rngs(0))
    hidden = jax.random.normal(jax.random.key(0), (2, 5, model.config.embed_dim)) * 30
    table = model.embedder.input_embedding[...]
    np.testing.assert_allclose(
        model_logits_fn(model)(hidden, table), model.logits_from_hidden(hidden), rtol=1e-6
    )


def test_chunked_loss_never_holds_all_the_logits():
    hidden, table, targets, weights = _problem(batch=2, length=64, vocab=8192)

    def loss_and_grads(h, t):
        return jax.value_and_grad(
            lambda x, y: chunked_cross_entropy(x, y, targets, weights, lambda a, b: a @ b.T,
                                               chunk_tokens=16)[0], argnums=(0, 1),
        )(h, t)  # fmt: skip

    compiled = jax.jit(loss_and_grads).lower(hidden, table).compile()
    all_logits_bytes = 2 * 64 * 8192 * 4
    assert compiled.memory_analysis().temp_size_in_bytes < all_logits_bytes / 2


def test_rows_with_long_prompts_skip_chunks_and_keep_the_exact_gradient():
    hidden, table, targets, _ = _problem(batch=2, length=24)
    # Completion tokens only in the middle of each row: most chunks hold no loss token.
    weights = jnp.zeros((2, 24)).at[0, 5:8].set(1.0).at[1, 20:22].set(1.0)

    def plain(h):
        return cross_entropy(_softcapped(h, table), targets, weights)[0]

    def chunked(h):
        return chunked_cross_entropy(h, table, targets, weights, _softcapped, chunk_tokens=4,
                                     table_grad=False)[0]  # fmt: skip

    np.testing.assert_allclose(jax.jit(chunked)(hidden), plain(hidden), rtol=1e-6)
    grads = jax.jit(jax.grad(chunked))(hidden)
    np.testing.assert_allclose(grads, jax.grad(plain)(hidden), rtol=1e-5, atol=1e-7)
    assert not np.any(grads[0, 8:]) and np.any(grads[1, 20:22])


def test_merged_rows_run_only_the_chunks_their_weighted_tokens_fill():
    hidden, table, targets, _ = _problem(batch=4, length=8)
    # 5 + 1 + 1 + 1 weighted tokens. Kept apart, a chunk of 8 tokens spans 2 positions of
    # every row, and the first row needs 3 such chunks; merged, all 8 fill one chunk.
    weights = jnp.zeros((4, 8)).at[0, 3:8].set(1.0).at[1:, 7].set(1.0)
    computed = []

    def counted_logits(h, t):
        jax.debug.callback(lambda: computed.append(1))
        return _softcapped(h, t)

    def loss(h, merge_rows):
        return chunked_cross_entropy(h, table, targets, weights, counted_logits, chunk_tokens=8,
                                     table_grad=False, merge_rows=merge_rows)[0]  # fmt: skip

    counts = {}
    for merge_rows in (False, True):
        computed.clear()
        jax.block_until_ready(jax.jit(jax.grad(loss), static_argnums=1)(hidden, merge_rows))
        jax.effects_barrier()
        counts[merge_rows] = len(computed)
    assert counts == {False: 3, True: 1}
