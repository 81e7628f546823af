import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tunix_jax.models.gemma.layers import (
    Einsum,
    Embedder,
    RMSNorm,
    apply_rope,
    contract,
    rope_tables,
)


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


@pytest.mark.parametrize("equation", ["BTD,NDH->BTNH", "BSD,CKDH->CBSKH", "BTNH,NHD->BTD", "ti,io->to"])
def test_bf16_contraction_rounds_operands_and_sums_in_f32_forward_and_backward(equation):
    """The value and both gradients are those of float32 math on bf16-rounded operands (and
    a bf16-rounded output gradient), not of all-bf16 math, and not of float32 math."""
    sizes = {"B": 2, "T": 3, "S": 3, "D": 64, "N": 2, "H": 8, "C": 2, "K": 1, "t": 5, "i": 64, "o": 7}
    operands, out = equation.split("->")
    x_axes, w_axes = operands.split(",")
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, [sizes[a] for a in x_axes], jnp.float32)
    w = jax.random.normal(kw, [sizes[a] for a in w_axes], jnp.float32)
    grad_out = jax.random.normal(kg, [sizes[a] for a in out], jnp.float32)

    def rounded(a):
        return a.astype(jnp.bfloat16).astype(jnp.float32)

    def f32(a, b):
        return jnp.einsum(equation, a, b, precision="highest")

    got, pullback = jax.vjp(lambda a, b: contract(equation, a, b, dtype=jnp.float32,
                                                  matmul_dtype=jnp.bfloat16), x, w)  # fmt: skip
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, f32(rounded(x), rounded(w)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, f32(x, w), rtol=1e-5, atol=1e-5)  # the rounding is real
    grad_x, grad_w = pullback(grad_out)
    _, reference = jax.vjp(f32, rounded(x), rounded(w))
    want_x, want_w = reference(rounded(grad_out))
    np.testing.assert_allclose(grad_x, want_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad_w, want_w, rtol=1e-5, atol=1e-5)
    # Without a matmul dtype it is the plain float32 einsum.
    np.testing.assert_array_equal(contract(equation, x, w, dtype=jnp.float32, matmul_dtype=None),
                                  jnp.einsum(equation, x, w))  # fmt: skip


def test_a_bf16_matmul_model_stays_close_to_the_f32_one_and_trains():
    """Gemma 3 (tiny) with bf16 weight matmuls: logits within bf16 rounding of the f32
    model's, and the LoRA gradient through every projection and the LM head is finite."""
    from tunix_jax.weights.loading import load_model

    f32, _ = load_model("tiny-gemma3", "random", seed=0)
    mixed, _ = load_model("tiny-gemma3", "random", seed=0, matmul_dtype=jnp.bfloat16)
    tokens = jnp.arange(3, 19, dtype=jnp.int32).reshape(2, 8)
    positions = jnp.broadcast_to(jnp.arange(8), (2, 8))
    want, _ = f32(tokens, positions)
    got, _ = mixed(tokens, positions)
    assert got.dtype == jnp.float32
    scale = float(jnp.max(jnp.abs(want)))
    assert float(jnp.max(jnp.abs(got - want))) < 0.05 * scale
    assert not np.array_equal(got, want)
    graphdef, params, rest = nnx.split(mixed, nnx.Param, ...)

    def loss(p):
        logits, _ = nnx.merge(graphdef, p, rest)(tokens, positions)
        return jnp.mean(jax.nn.log_softmax(logits)[..., 0])

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert any(float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(grads))
