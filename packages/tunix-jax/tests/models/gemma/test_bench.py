import sys

import jax
import pytest
from click.testing import CliRunner
from flax import nnx

from tunix_jax.models.gemma.bench import benchmark_generate
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.transformer import Transformer


def test_benchmark_generate_reports_throughput():
    figures = benchmark_generate("tiny-gemma2", batch=3, new_tokens=5, prompt_len=6)
    assert figures["batch"] == 3 and figures["new_tokens"] == 5
    assert figures["tokens_per_s"] > 0 and figures["first_call_s"] >= figures["generate_s"]
    # generate_s is printed to the millisecond; tokens/s comes from the unrounded time.
    seconds = figures["generate_s"]
    assert 15 / (seconds + 0.0005) - 0.1 <= figures["tokens_per_s"]
    assert seconds < 0.001 or figures["tokens_per_s"] <= 15 / (seconds - 0.0005) + 0.1


@pytest.mark.parametrize("matmul_dtype", ["float32", "bfloat16"])
def test_a_decode_step_reads_every_parameter_and_the_whole_cache(matmul_dtype):
    figures = benchmark_generate("tiny-gemma3", batch=3, new_tokens=5, prompt_len=6,
                                 matmul_dtype=matmul_dtype)  # fmt: skip
    config = get_config("tiny-gemma3")
    state = nnx.state(Transformer(config, rngs=nnx.Rngs(0)), nnx.Param)
    # Weight matrices go to the model in the matmul dtype; norm scales stay float32.
    low = 2 if matmul_dtype == "bfloat16" else 4
    weights = sum(x.size * (low if x.ndim >= 2 else 4) for x in jax.tree.leaves(state))
    # 3 rows pad to a batch of 3; prompt 6 -> 8 slots and 5 new tokens -> 8 slots.
    cache = config.num_layers * 2 * 3 * (8 + 8) * config.num_kv_heads * config.head_dim * 4
    assert figures["decode_step_mb"] == round((weights + cache) / 1e6, 1)
    assert figures["bandwidth_gb_s"] > 0 and figures["prefill_s"] > 0
    if figures["decode_gb_s"] is not None:  # None only when the 4 steps vanish in the noise
        assert figures["bandwidth_share"] == pytest.approx(
            figures["decode_gb_s"] / figures["bandwidth_gb_s"], abs=0.002)


def test_cli_group_is_import_light_and_runs():
    from tunix_jax import cli

    result = CliRunner().invoke(cli.bench, ["--help"])
    assert result.exit_code == 0 and "generate" in result.output
    result = CliRunner().invoke(
        cli.bench,
        [
            "generate",
            "--model",
            "tiny-gemma3",
            "--batch",
            "2",
            "--new-tokens",
            "4",
            "--prompt-len",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "tokens_per_s" in result.output and "compile_s" in result.output
    bad = CliRunner().invoke(cli.bench, ["generate", "--model", "tiny-gemma3", "--batch", "0"])
    assert bad.exit_code != 0 and "--batch" in bad.output


def test_cli_module_does_not_import_jax():
    import subprocess

    code = "import sys, tunix_jax, tunix_jax.cli; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
