"""``model.options.matmul_dtype: auto`` (the default): bf16 operands on an accelerator or a
CPU with native bf16 dot products, float32 elsewhere; settled once and named with why."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunix_core.protocols import ModelSpec, ResolvingBackend
from tunix_jax.backend import JaxBackend
from tunix_jax.matmuls import (
    MatmulChoice,
    auto_matmul_dtype,
    choose_matmul_dtype,
    cpu_flags,
    resolve_matmul_dtype,
)
from tunix_jax.weights.loading import load_model, matmul_dtype

AVX512 = frozenset({"fpu", "sse2", "avx2", "avx512f", "avx512_bf16"})
AMX = frozenset({"fpu", "avx2", "amx_tile", "amx_bf16"})
PLAIN = frozenset({"fpu", "sse2", "avx2", "avx512f"})


@pytest.mark.parametrize(
    ("platform", "flags", "expected"),
    [
        ("cpu", AVX512, MatmulChoice("bfloat16", "auto: CPU has avx512_bf16")),
        ("cpu", AMX, MatmulChoice("bfloat16", "auto: CPU has amx_bf16")),
        ("cpu", AVX512 | AMX, MatmulChoice("bfloat16", "auto: CPU has avx512_bf16 and amx_bf16")),
        ("cpu", PLAIN, MatmulChoice("float32", "auto: CPU has no avx512_bf16 or amx_bf16")),
        ("cpu", None, MatmulChoice("float32", "auto: CPU flags unreadable (/proc/cpuinfo)")),
        ("gpu", PLAIN, MatmulChoice("bfloat16", "auto: on gpu")),
        ("tpu", None, MatmulChoice("bfloat16", "auto: on tpu")),
    ],
)
def test_auto_is_bf16_only_where_the_hardware_multiplies_it_natively(platform, flags, expected):
    assert choose_matmul_dtype(platform, flags) == expected


def test_cpu_flags_are_read_from_the_first_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    assert cpu_flags(cpuinfo) == frozenset({"fpu", "avx2", "avx512_bf16"})


def test_cpu_flags_unreadable_or_missing_are_none(tmp_path):
    assert cpu_flags(tmp_path / "missing") is None
    arm = tmp_path / "cpuinfo"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert cpu_flags(arm) is None


def test_a_named_dtype_is_taken_as_given_and_auto_as_this_machine_settles_it():
    assert resolve_matmul_dtype("float32") == MatmulChoice("float32", "model.options.matmul_dtype")
    assert resolve_matmul_dtype("bfloat16").dtype == "bfloat16"
    here = choose_matmul_dtype(jax.default_backend(), cpu_flags())
    assert resolve_matmul_dtype("auto") == auto_matmul_dtype() == here
    assert matmul_dtype("float32") is None
    assert matmul_dtype("bfloat16") == jnp.bfloat16
    assert matmul_dtype("auto") == (None if here.dtype == "float32" else jnp.bfloat16)


def test_the_backend_settles_the_default_and_nothing_a_config_names():
    backend = JaxBackend()
    assert isinstance(backend, ResolvingBackend)
    here = auto_matmul_dtype()
    assert backend.resolve_options({}) == {
        "matmul_dtype": {"value": here.dtype, "reason": here.reason}
    }
    assert backend.resolve_options({"matmul_dtype": "auto", "mesh_data": 1}) == (
        backend.resolve_options({})
    )
    assert backend.resolve_options({"matmul_dtype": "float32"}) == {}
    assert backend.resolve_options({"matmul_dtype": "bfloat16"}) == {}


def test_a_default_spec_loads_with_this_machine_s_matmuls():
    model = JaxBackend().load(ModelSpec("tiny-gemma3", "random"), progress=print)
    assert model.transformer.matmul_dtype == matmul_dtype(auto_matmul_dtype().dtype)


def test_explicit_float32_computes_exactly_as_before():
    spec = ModelSpec("tiny-gemma3", "random", options={"matmul_dtype": "float32"})
    model = JaxBackend().load(spec, progress=print).transformer
    plain, _ = load_model("tiny-gemma3", "random", seed=0)  # the path before matmul_dtype
    assert model.matmul_dtype is None
    tokens = jnp.array([[2, 17, 33, 48, 5, 9]])
    positions = jnp.arange(tokens.shape[1])[None]
    mask = jnp.tril(jnp.ones((1, tokens.shape[1], tokens.shape[1]), bool))
    got, _ = model(tokens, positions, mask)
    want, _ = plain(tokens, positions, mask)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
