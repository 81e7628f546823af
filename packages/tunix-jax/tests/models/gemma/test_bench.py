import sys

from click.testing import CliRunner

from tunix_jax.models.gemma.bench import benchmark_generate


def test_benchmark_generate_reports_throughput():
    figures = benchmark_generate("tiny-gemma2", batch=3, new_tokens=5, prompt_len=6)
    assert figures["batch"] == 3 and figures["new_tokens"] == 5
    assert figures["tokens_per_s"] > 0 and figures["first_call_s"] >= figures["generate_s"]
    # generate_s is printed to the millisecond; tokens/s comes from the unrounded time.
    seconds = figures["generate_s"]
    assert 15 / (seconds + 0.0005) - 0.1 <= figures["tokens_per_s"]
    assert seconds < 0.001 or figures["tokens_per_s"] <= 15 / (seconds - 0.0005) + 0.1


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
