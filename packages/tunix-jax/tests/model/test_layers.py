import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_jax.model.layers import Einsum, Embedder, RMSNorm, apply_rope, rope_tables


def test_rms_norm_applies_one_plus_scale():
    norm = RMSNorm(8, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (2, 3, 8)) * 5
    plain = x / jnp.sqrt(jnp.mean(x**2, axis=-1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(norm(x), plain, rtol=1e-5, atol=1e-6)
    norm.scale[...] = jnp.full((8,), 0.5)
    np.testing.assert_allclose(norm(x), 1.5 * plain, rtol=1e-5, atol=1e-6)
    assert norm(x.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_rope_preserves_norm_and_depends_only_on_distance():
    head_dim = 16
    q = jax.random.normal(jax.random.key(1), (1, 1, 1, head_dim))
    k = jax.random.normal(jax.random.key(2), (1, 1, 1, head_dim))

    def rotated(x, position):
        sin, cos = rope_tables(jnp.array([[position]]), head_dim=head_dim, base=10_000.0)
        return apply_rope(x, sin, cos)

    np.testing.assert_allclose(jnp.linalg.norm(rotated(q, 7)), jnp.linalg.norm(q), rtol=1e-5)
    score_a = jnp.sum(rotated(q, 10) * rotated(k, 4))
    score_b = jnp.sum(rotated(q, 106) * rotated(k, 100))
    np.testing.assert_allclose(score_a, score_b, rtol=1e-4)
    assert not np.allclose(jnp.sum(rotated(q, 10) * rotated(k, 9)), score_a)


def test_rope_scale_divides_positions():
    sin_scaled, _ = rope_tables(jnp.array([[8]]), head_dim=8, base=100.0, scale=4.0)
    sin_plain, _ = rope_tables(jnp.array([[2]]), head_dim=8, base=100.0)
    np.testing.assert_allclose(sin_scaled, sin_plain, rtol=1e-6)


def test_einsum_and_embedder():
    einsum = Einsum("BTD,NDH->BTNH", (3, 4, 5), fan_in=4, rngs=nnx.Rngs(0))
    assert einsum(jnp.ones((2, 6, 4))).shape == (2, 6, 3, 5)
    embedder = Embedder(10, 4, rngs=nnx.Rngs(0))
    table = embedder.input_embedding[...]
    np.testing.assert_allclose(embedder.encode(jnp.array([[3]]))[0, 0], table[3] * 2.0, rtol=1e-6)
    hidden = jnp.ones((1, 4))
    np.testing.assert_allclose(embedder.decode(hidden), hidden @ table.T, rtol=1e-5)
