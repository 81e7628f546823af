"""`tunix bench ...` commands of tunix-jax. JAX is imported only when a command runs.

Add a benchmark with `@bench.command("name")` here, or `bench.add_command(cmd)`.
"""

from __future__ import annotations

import click

from tunix_jax.train.bench import train_bench


@click.group("bench")
def bench() -> None:
    """Measure throughput of the JAX model code (sampler, trainer)."""


@bench.command("generate")
@click.option("--model", "preset", default="gemma3-270m", show_default=True, help="Model preset.")
@click.option("--batch", type=int, default=8, show_default=True, help="Prompts per call.")
@click.option("--new-tokens", type=int, default=64, show_default=True, help="Tokens per prompt.")
@click.option("--prompt-len", type=int, default=64, show_default=True, help="Prompt tokens.")
@click.option(
    "--weights",
    default="random",
    show_default=True,
    help="default | random | gguf:PATH | safetensors:DIR | orbax:DIR",
)
@click.option(
    "--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
def generate(
    preset: str,
    batch: int,
    new_tokens: int,
    prompt_len: int,
    weights: str,
    dtype: str,
    seed: int,
) -> None:
    """Generated tokens/s (second call) and first-call compile time of the KV-cache sampler."""
    from tunix_jax.model.bench import benchmark_generate

    for name, value in (("batch", batch), ("new-tokens", new_tokens), ("prompt-len", prompt_len)):
        if value < 1:
            raise click.BadParameter(f"must be >= 1, got {value}", param_hint=f"--{name}")
    figures = benchmark_generate(
        preset,
        batch=batch,
        new_tokens=new_tokens,
        prompt_len=prompt_len,
        weights=weights,
        dtype=dtype,
        seed=seed,
    )
    for key, value in figures.items():
        click.echo(f"{key:>14}: {value}")

bench.add_command(train_bench)
