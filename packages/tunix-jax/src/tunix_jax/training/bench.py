"""``tunix bench train``: training throughput and MFU of one preset, batch and length.

FLOPs per trained token (the formula of ``docs/performance.md``)::

    matmul params  P = L * (D*H*(2*N + 2*K) + 3*D*F) + V*D     (V*D: the tied LM head)
    dense          6 * P                 full fine-tune (forward 2P, backward 4P)
                   4 * P + 6 * P_lora    LoRA (frozen weights need no weight gradient)
    attention      sum over layers of 12 * N * H * c_l          (QK^T and PV, forward x 3)
                   c_l = mean over positions t < T of min(t + 1, W_l) keys attended,
                   W_l = the sliding window on local layers, T on global ones

with L layers, D model width, F MLP width, N query heads, K key/value heads, H head
dim, V vocabulary. MFU = FLOPs per token x tokens/s / the device's peak dense bf16
FLOP/s (:data:`PEAK_FLOPS`); a CPU has no meaningful peak, so MFU is only printed when
``--peak-tflops`` gives one.
"""

from __future__ import annotations

import resource
import statistics
import time

import click

from tunix_core.config import structure_config
from tunix_jax.models.gemma.config import ModelConfig, get_config
from tunix_jax.options import trainer_options

# Dense bf16 peak FLOP/s by a substring of jax's device_kind (vendor data sheets).
PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L4", 121e12),
    ("TPU v6", 918e12),
    ("TPU v5p", 459e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5e", 197e12),
    ("TPU v4", 275e12),
)


def peak_flops(device_kind: str) -> float | None:
    for needle, flops in PEAK_FLOPS:
        if needle.lower() in device_kind.lower():
            return flops
    return None


def matmul_params(config: ModelConfig) -> int:
    """Weights that take part in a matmul per token, the tied LM head included."""
    d, h = config.embed_dim, config.head_dim
    per_layer = d * h * (2 * config.num_heads + 2 * config.num_kv_heads)
    per_layer += 3 * d * config.hidden_dim
    return config.num_layers * per_layer + config.vocab_size * d


def attention_context(length: int, window: int | None) -> float:
    """Mean number of keys a query attends to in a causal sequence of ``length``."""
    if window is None or window >= length:
        return (length + 1) / 2
    # Positions t < window see t + 1 keys, the rest see window keys.
    ramp = window * (window + 1) / 2
    return (ramp + (length - window) * window) / length


def train_flops_per_token(
    config: ModelConfig, seq_len: int, *, lora_params: int | None = None
) -> float:
    """Training FLOPs per token (see the module docstring); ``lora_params`` set means LoRA."""
    params = matmul_params(config)
    dense = 6.0 * params if lora_params is None else 4.0 * params + 6.0 * lora_params
    attention = 0.0
    for layer in range(config.num_layers):
        window = config.sliding_window if config.attention_kind(layer) == "local" else None
        context = attention_context(seq_len, window)
        attention += 12.0 * config.num_heads * config.head_dim * context
    return dense + attention


@click.command("train")
@click.option("--model", "preset", default="gemma3-270m", show_default=True, help="Model preset.")
@click.option("--batch", type=int, default=4, show_default=True, help="Rows per step.")
@click.option("--seq", type=int, default=256, show_default=True, help="Tokens per row.")
@click.option("--weights", default="random", show_default=True, help="Weights source.")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default="float32",
              show_default=True, help="Compute and parameter dtype.")  # fmt: skip
@click.option("--matmul-dtype", type=click.Choice(["auto", "float32", "bfloat16"]), default="float32",
              show_default=True, help="Operands of the weight matmuls (model.options.matmul_dtype; auto as a run settles it).")  # fmt: skip
@click.option("--lora/--full", default=True, show_default=True, help="LoRA or full fine-tune.")
@click.option("--rank", type=int, default=16, show_default=True, help="LoRA rank.")
@click.option("--steps", type=int, default=5, show_default=True, help="Timed steps.")
@click.option("--remat", type=click.Choice(["none", "block", "dots"]), default="none",
              show_default=True)  # fmt: skip
@click.option("--loss-chunk-tokens", type=int, default=512, show_default=True)
@click.option("--peak-tflops", type=float, default=None,
              help="Peak FLOP/s to compute MFU against (needed on a CPU).")  # fmt: skip
def train_bench(
    preset: str,
    batch: int,
    seq: int,
    weights: str,
    dtype: str,
    matmul_dtype: str,
    lora: bool,
    rank: int,
    steps: int,
    remat: str,
    loss_chunk_tokens: int,
    peak_tflops: float | None,
) -> None:
    """Time training steps on random token ids: tokens/s, MFU and compile time."""
    result = run_train_bench(
        preset=preset, batch=batch, seq=seq, weights=weights, dtype=dtype,
        matmul_dtype=matmul_dtype, lora=lora, rank=rank,
        steps=steps, remat=remat, loss_chunk_tokens=loss_chunk_tokens, peak_tflops=peak_tflops,
    )  # fmt: skip
    for key, value in result.items():
        click.echo(f"{key:>22}: {value}")


def run_train_bench(
    *,
    preset: str,
    batch: int,
    seq: int,
    weights: str = "random",
    dtype: str = "float32",
    matmul_dtype: str = "float32",
    lora: bool = True,
    rank: int = 16,
    steps: int = 5,
    remat: str = "none",
    loss_chunk_tokens: int = 512,
    peak_tflops: float | None = None,
) -> dict[str, object]:
    """Build the model and the real train step, compile, time ``steps`` steps."""
    # startup: `tunix bench --help` imports this module; JAX loads when the command runs
    import jax
    import numpy as np

    from tunix_jax import sharding as mesh_lib
    from tunix_jax.dtypes import DTYPES
    from tunix_jax.matmuls import resolve_matmul_dtype
    from tunix_jax.training.loop import (
        TrainState,
        make_train_step,
        prepare_model,
        training_model,
    )
    from tunix_jax.training.optim import build_optimizer
    from tunix_jax.weights.loading import load_model
    from tunix_jax.weights.loading import matmul_dtype as matmul_dtype_of

    config = structure_config({
        "model": {"preset": preset, "weights": weights, "dtype": dtype,
                  "options": {"matmul_dtype": matmul_dtype}},
        "trainer": {"options": {"compute_dtype": dtype, "remat": remat}},
        "training": {"batch_size": batch, "max_seq_len": seq, "steps": steps + 1,
                     "lora": {"enabled": lora, "rank": rank}},
    })  # fmt: skip
    options = trainer_options(config)
    model_config = get_config(preset)
    loaded_at = time.perf_counter()
    loaded, _ = load_model(preset, weights, dtype=DTYPES[dtype], seed=config.run.seed,
                           matmul_dtype=matmul_dtype_of(matmul_dtype))  # fmt: skip
    model = prepare_model(config, options, training_model(loaded, config, options))
    load_seconds = time.perf_counter() - loaded_at
    mesh = mesh_lib.make_mesh()
    tx, _ = build_optimizer(config.training, steps + 1)
    state = TrainState.create(model, config, mesh, tx)
    params, opt_state, frozen = state.params, state.opt_state, state.frozen
    trainable_count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params))

    rng = np.random.default_rng(0)
    # Random ids (never all zeros: a constant input hides real compute costs).
    tokens = rng.integers(1, model_config.vocab_size, size=(1, batch, seq + 1), dtype=np.int32)
    host = {
        "inputs": tokens[..., :-1],
        "targets": tokens[..., 1:],
        "weights": np.ones((1, batch, seq), np.float32),
        "segment_ids": np.ones((1, batch, seq), np.int32),
        "positions": np.broadcast_to(np.arange(seq, dtype=np.int32), (1, batch, seq)).copy(),
    }
    sharding = mesh_lib.batch_sharding(mesh, leading_axes=1)
    data = {k: mesh_lib.put_global(v, sharding) for k, v in host.items()}
    step_fn = jax.jit(
        make_train_step(
            state.graphdef,
            state.template,
            tx,
            packing=False,
            chunk_tokens=loss_chunk_tokens,
            table_grad=not lora,
            merge_rows=mesh.size == 1,
        ),
        donate_argnums=(0, 1),
    )
    compile_started = time.perf_counter()
    compiled = step_fn.lower(params, opt_state, frozen, data).compile()
    compile_seconds = time.perf_counter() - compile_started
    warm_up_started = time.perf_counter()
    params, opt_state, metrics = compiled(params, opt_state, frozen, data)
    jax.block_until_ready(metrics)  # type: ignore[no-untyped-call]  # unannotated in jax
    first_step_seconds = compile_seconds + time.perf_counter() - warm_up_started
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        params, opt_state, metrics = compiled(params, opt_state, frozen, data)
        jax.block_until_ready(metrics)  # type: ignore[no-untyped-call]  # unannotated in jax
        times.append(time.perf_counter() - began)
    step_seconds = statistics.median(times)
    tokens_per_second = batch * seq / step_seconds
    flops = train_flops_per_token(model_config, seq, lora_params=trainable_count if lora else None)
    device = jax.devices()[0]
    peak = peak_tflops * 1e12 if peak_tflops else peak_flops(device.device_kind)
    if device.platform == "cpu" and not peak_tflops:
        peak = None
    stats = getattr(device, "memory_stats", lambda: None)() or {}
    result: dict[str, object] = {
        "device": f"{device.platform}:{device.device_kind} x{jax.device_count()}",
        "model": f"{preset} ({'LoRA r=' + str(rank) if lora else 'full'}, {dtype}, "
                 f"matmuls {resolve_matmul_dtype(matmul_dtype).dtype}, remat {remat})",
        "batch x seq": f"{batch} x {seq}",
        "trainable params": f"{trainable_count:,}",
        "load seconds": round(load_seconds, 2),
        "compile seconds": round(compile_seconds, 2),
        "first step seconds": round(first_step_seconds, 2),
        "step seconds (median)": round(step_seconds, 4),
        "steps/s": round(1 / step_seconds, 4),
        "tokens/s": round(tokens_per_second, 1),
        "TFLOP per step": round(flops * batch * seq / 1e12, 3),
        "achieved TFLOP/s": round(flops * tokens_per_second / 1e12, 4),
        "MFU": "n/a (no peak FLOP/s for this device; pass --peak-tflops)"
        if peak is None
        else f"{100 * flops * tokens_per_second / peak:.2f} % of {peak / 1e12:.0f} TFLOP/s",
        "loss": round(float(metrics["loss"]), 4),
        "host peak RSS (GiB)": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    if "peak_bytes_in_use" in stats:
        result["device peak memory (GiB)"] = round(stats["peak_bytes_in_use"] / 2**30, 2)
    return result
