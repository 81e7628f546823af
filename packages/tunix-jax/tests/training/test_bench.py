import pytest

from tunix_jax.matmuls import resolve_matmul_dtype
from tunix_jax.models.gemma.config import get_config
from tunix_jax.training.bench import (
    attention_context,
    matmul_params,
    peak_flops,
    run_train_bench,
    train_flops_per_token,
)


def test_matmul_params_of_gemma3_1b_count_the_tied_head():
    config = get_config("gemma3-1b")
    per_layer = 1152 * 256 * (2 * 4 + 2 * 1) + 3 * 1152 * 6912
    assert matmul_params(config) == 26 * per_layer + 262_144 * 1152


def test_attention_context_with_and_without_a_window():
    assert attention_context(4, None) == 2.5
    assert attention_context(4, 2) == (1 + 2 + 2 + 2) / 4
    assert attention_context(4, 8) == 2.5


def test_flops_per_token_full_and_lora():
    config = get_config("gemma3-1b")
    full = train_flops_per_token(config, 1024)
    lora = train_flops_per_token(config, 1024, lora_params=1_000_000)
    dense = 6 * matmul_params(config)
    assert dense < full < dense * 1.1
    assert lora == pytest.approx(full - 2 * matmul_params(config) + 6e6)


def test_peak_flops_by_device_kind():
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("TPU v5 lite") == 197e12
    assert peak_flops("cpu") is None


@pytest.mark.parametrize("matmul_dtype", ["float32", "bfloat16", "auto"])
def test_bench_runs_the_real_train_step_on_the_tiny_model(matmul_dtype):
    result = run_train_bench(preset="tiny-gemma2", batch=2, seq=16, steps=1, matmul_dtype=matmul_dtype)
    assert result["tokens/s"] > 0 and result["compile seconds"] > 0
    assert result["first step seconds"] > result["compile seconds"]
    # auto is named as this machine settles it
    assert f"matmuls {resolve_matmul_dtype(matmul_dtype).dtype}" in str(result["model"])
    assert str(result["MFU"]).startswith("n/a")
