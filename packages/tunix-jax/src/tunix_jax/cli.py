"""`tunix bench ...` and `tunix export` of tunix-jax. JAX is imported only when a command runs
(``tests/models/gemma/test_bench.py``), so the commands' help stays quick.

Add a benchmark with `@bench.command("name")` here, or `bench.add_command(cmd)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tunix_core.evidence import file_digests
from tunix_core.jsonio import write_json_atomic
from tunix_core.layout import EXPORT_RECORD_SUFFIX, EXPORTS
from tunix_core.rundir import RunDirectory
from tunix_jax.training.bench import train_bench

if TYPE_CHECKING:
    from tunix_jax.models.gemma.tokenizer import Tokenizer
    from tunix_jax.models.gemma.transformer import Transformer


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
@click.option("--matmul-dtype", type=click.Choice(["auto", "float32", "bfloat16"]), default="float32",
              show_default=True, help="Operands of the weight matmuls (model.options.matmul_dtype; auto as a run settles it).")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
def generate(
    preset: str,
    batch: int,
    new_tokens: int,
    prompt_len: int,
    weights: str,
    dtype: str,
    matmul_dtype: str,
    seed: int,
) -> None:
    """Generated tokens/s (second call), first-call compile time and the decode's share of
    the memory bandwidth of the KV-cache sampler."""
    # startup: JAX loads when the command runs, not with its help
    from tunix_jax.models.gemma.bench import benchmark_generate

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
        matmul_dtype=matmul_dtype,
        seed=seed,
    )
    for key, value in figures.items():
        click.echo(f"{key:>14}: {value}")


bench.add_command(train_bench)


EXPORT_FORMATS = {
    "hf": ("float32", "bfloat16", "float16"),
    "gguf": ("float32", "float16"),
    "orbax": ("float32", "bfloat16", "float16"),
}
# Where `tunix export RUN` writes when --out is not given, relative to RUN.
DEFAULT_EXPORT_PATHS = {"hf": f"{EXPORTS}/hf", "gguf": f"{EXPORTS}/model.gguf",
                        "orbax": f"{EXPORTS}/orbax"}  # fmt: skip


def out_problem(run: RunDirectory, out: Path) -> str | None:
    """Why ``tunix export`` may not write ``out``, or None: inside the run directory only
    its exports/ folder takes exports; elsewhere (``model/``, ``submission/``) the files
    would join evidence that was recorded without them. Symbolic links are resolved."""
    target, exports = out.resolve(), (run.path / EXPORTS).resolve()
    if target.is_relative_to(run.path.resolve()) and not (
        target.is_relative_to(exports) and target != exports
    ):
        return (f"{out} lies inside the run directory {run.path}; write the export under "
                f"{run.path / EXPORTS} or outside the run")  # fmt: skip
    return None


@click.command("export")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(EXPORT_FORMATS)),
    required=True,
    help="hf: Hugging Face folder (safetensors); gguf: llama.cpp file; orbax: params/ in "
    "the upstream layout with tokenizer.model.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder (hf, orbax) or file (gguf) to create. [default: RUN/exports/hf, "
    "RUN/exports/model.gguf, RUN/exports/orbax]",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "bfloat16", "float16"]),
    default=None,
    help="Dtype of the written weights. [default: the run's, or float32 where the format lacks it]",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Load the export back and compare its logits with the run's probe.json.",
)
def export(run: Path, fmt: str, out: Path | None, dtype: str | None, verify: bool) -> None:
    """Write the fine-tuned model of RUN (its model/ folder) in another format."""
    # startup: JAX loads when the command runs, not with its help
    from tunix_jax.export.writing import PARAMS_DIRNAME, read_export_meta

    run_dir = RunDirectory.open(run)
    model_dir = run_dir.model_dir
    try:
        meta, probe = read_export_meta(model_dir)
    except FileNotFoundError as error:
        raise click.ClickException(
            f"{run} has no finished model export ({error.filename} is missing); "
            "run the train stage first"
        ) from None
    run_dtype = meta["dtype"]
    dtype = dtype or (run_dtype if run_dtype in EXPORT_FORMATS[fmt] else "float32")
    if dtype not in EXPORT_FORMATS[fmt]:
        raise click.BadParameter(
            f"{fmt} supports {', '.join(EXPORT_FORMATS[fmt])}, not {dtype}", param_hint="--dtype"
        )
    out = out or run / DEFAULT_EXPORT_PATHS[fmt]
    if out.exists():
        raise click.ClickException(f"{out} already exists; remove it or pass another --out")
    refusal = out_problem(run_dir, out)
    if refusal is not None:
        raise click.BadParameter(refusal, param_hint="--out")

    # startup: JAX loads when the command runs, not with its help
    import jax.numpy as jnp

    from tunix_jax.weights.loading import load_model

    # Orbax stores the arrays as they are; the other writers convert from float32.
    load_dtype = jnp.dtype(dtype if fmt == "orbax" else "float32")
    weights = f"orbax:{model_dir / PARAMS_DIRNAME}"
    model, tokenizer = load_model(meta["preset"], weights, dtype=load_dtype)
    reload = write_export(model, tokenizer, fmt, out, dtype)
    record = {"format": fmt, "dtype": dtype, "source_fingerprint": meta["fingerprint"],
              "files": file_digests(out)}  # fmt: skip
    write_json_atomic(out.with_name(out.name + EXPORT_RECORD_SUFFIX), record)
    click.echo(f"wrote {fmt} ({dtype}) to {out}")
    if verify:
        del model
        diff, tolerance, ok = verify_export(reload, meta, probe, dtype)
        click.echo(f"reloaded it: max |probe logit diff| {diff:.3g}, tolerance {tolerance:.3g}")
        if not ok:
            raise click.ClickException(f"the export at {out} does not reproduce the run's probe")


def write_export(model: Transformer, tokenizer: Tokenizer, fmt: str, out: Path, dtype: str) -> str:
    """Write `model` as `fmt` at `out`; the `load_model` weights string that reads it back."""
    # startup: JAX loads when the command runs, not with its help
    from tunix_jax.export.gguf_export import write_gguf
    from tunix_jax.export.hf_export import write_hf_checkpoint
    from tunix_jax.export.writing import PARAMS_DIRNAME
    from tunix_jax.weights.loading import model_params, save_orbax

    if fmt == "orbax":
        save_orbax(model, out / PARAMS_DIRNAME)
        tokenizer.save(out)
        return f"orbax:{out / PARAMS_DIRNAME}"
    params, config = model_params(model), model.config
    if fmt == "hf":
        write_hf_checkpoint(params, config, tokenizer, out, dtype=dtype)
        return f"safetensors:{out}"
    write_gguf(params, config, tokenizer, out, dtype=dtype)
    return f"gguf:{out}"


def verify_export(
    weights: str, meta: Mapping[str, Any], probe: Mapping[str, Any], dtype: str
) -> tuple[float, float, bool]:
    """(max |logit diff|, tolerance, ok) of the export read by `load_model(weights)` against
    the probe the run recorded; the tolerance is the looser of the run's and the export's
    dtype, and the tokenizer must encode the probe prompt to the same ids."""
    # startup: JAX loads when the command runs, not with its help
    import jax.numpy as jnp

    from tunix_jax.export.verifying import RELATIVE_TOLERANCE, compare_probe
    from tunix_jax.export.writing import probe_logits
    from tunix_jax.weights.loading import load_model

    model, tokenizer = load_model(meta["preset"], weights, dtype=jnp.dtype(meta["dtype"]))
    ids = tokenizer.encode(probe["prompt"], add_bos=probe["add_bos"])
    logits = probe_logits(model, probe["token_ids"])
    loosest = max((meta["dtype"], dtype), key=lambda name: RELATIVE_TOLERANCE[name])
    diff, tolerance, argmax_match, _, _ = compare_probe(probe, logits, dtype=loosest)
    return diff, tolerance, diff <= tolerance and argmax_match and ids == probe["token_ids"]
