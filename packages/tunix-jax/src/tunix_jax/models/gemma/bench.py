"""Sampler throughput: generated tokens per second, first-call (compile) time, and the
decode's share of the device's memory bandwidth.

Prompts are random token ids (never special ids) of a fixed length, stop tokens are
disabled so every row generates exactly `new_tokens` tokens, and the timed figure is the
fastest of `repeats` further calls, which reuse the first call's compilation (compile_s is
the first call minus that). Throughput counts generated
tokens only (batch x new_tokens) over the whole call, prefill included.

The decode figures leave the prefill out: a one-token call (the prefill and its first
token) is timed the same way, and the other ``new_tokens - 1`` steps share the rest. A
step reads at least every parameter once, as the sampler hands them to the model, and
the whole KV cache (`decode_step_bytes`); that over the step's time, against what a
plain read of memory reaches (`read_bandwidth`), is ``bandwidth_share``: how close
decoding comes to the memory-bound limit.
"""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tunix_jax.matmuls import resolve_matmul_dtype
from tunix_jax.models.gemma.sampler import Sampler, cache_length
from tunix_jax.weights.loading import load_model
from tunix_jax.weights.loading import matmul_dtype as matmul_dtype_of

_FIRST_ORDINARY_ID = 10  # above pad/eos/bos/unk/mask and the first unused ids
# What `read_bandwidth` reads: far past a CPU's caches; on an accelerator enough that the
# launch is a small part of the time.
_CPU_READ_BYTES = 512 << 20
_ACCELERATOR_READ_BYTES = 4 << 30


def _fastest(call: Callable[[], object], repeats: int) -> float:
    """The shortest wall time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(max(repeats, 1)):
        begin = time.perf_counter()
        call()
        times.append(time.perf_counter() - begin)
    return min(times)


def read_bandwidth(num_bytes: int | None = None, repeats: int = 5) -> float:
    """The default device's memory read rate in GB/s: the fastest of ``repeats`` jitted
    float32 sums over ``num_bytes`` (512 MiB on a CPU, 4 GiB on an accelerator)."""
    if num_bytes is None:
        on_cpu = jax.default_backend() == "cpu"
        num_bytes = _CPU_READ_BYTES if on_cpu else _ACCELERATOR_READ_BYTES
    data = jnp.ones((num_bytes // 4,), jnp.float32)
    total = jax.jit(jnp.sum)
    total(data).block_until_ready()
    return num_bytes / _fastest(lambda: total(data).block_until_ready(), repeats) / 1e9


def decode_step_bytes(sampler: Sampler, batch: int, cache_len: int) -> int:
    """What one decode step of a ``batch`` of rows reads at least once: every parameter as
    the sampler hands it to the model (weight matrices in the matmul dtype; the tied
    embedding once, as the LM head) and the whole KV cache of ``cache_len`` slots, which
    attention reads in full, masked slots included."""
    weights = sum(leaf.nbytes for leaf in jax.tree.leaves(sampler._placed_state()))
    cache = jax.eval_shape(lambda: sampler.model.init_cache(batch, cache_len))
    slots = sum(math.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(cache))
    return int(weights + slots)


def benchmark_generate(
    preset: str,
    *,
    batch: int,
    new_tokens: int,
    prompt_len: int = 64,
    weights: str = "random",
    dtype: str = "float32",
    matmul_dtype: str = "float32",
    seed: int = 0,
    repeats: int = 2,
) -> dict[str, Any]:
    """Measure `Sampler.generate_ids`; returns the figures `tunix bench generate` prints."""
    start = time.perf_counter()
    model, tokenizer = load_model(preset, weights, dtype=jnp.dtype(dtype), seed=seed,
                                  matmul_dtype=matmul_dtype_of(matmul_dtype))  # fmt: skip
    jax.block_until_ready(jax.tree.leaves(model))  # type: ignore[no-untyped-call]  # unannotated in jax
    load_s = time.perf_counter() - start

    rng = np.random.default_rng(seed)
    vocab = model.config.vocab_size
    prompts = [
        [tokenizer.bos_id, *rng.integers(_FIRST_ORDINARY_ID, vocab, prompt_len - 1).tolist()]
        for _ in range(batch)
    ]
    sampler = Sampler(model, tokenizer)

    def call(count: int) -> None:
        result = sampler.generate_ids(prompts, max_new_tokens=count, stop_ids=())
        assert all(len(tokens) == count for tokens in result.tokens)

    first_call_s = _fastest(lambda: call(new_tokens), 1)
    generate_s = _fastest(lambda: call(new_tokens), repeats)
    generated = batch * new_tokens
    call(1)  # compiles the one-token program
    prefill_s = _fastest(lambda: call(1), repeats)
    decode_s = generate_s - prefill_s
    step_bytes = decode_step_bytes(
        sampler, sampler.batch_size(batch), cache_length(prompt_len, new_tokens)
    )
    bandwidth = read_bandwidth()
    decode_gb_s = share = None  # without a decode step, or with one lost in the timing noise
    if new_tokens > 1 and decode_s > 0:
        rate = step_bytes * (new_tokens - 1) / decode_s / 1e9
        decode_gb_s, share = round(rate, 2), round(rate / bandwidth, 3)
    return {
        "model": preset,
        "weights": weights,
        "dtype": dtype,
        "matmul_dtype": resolve_matmul_dtype(matmul_dtype).dtype,
        "device": jax.devices()[0].device_kind,
        "batch": batch,
        "prompt_len": prompt_len,
        "new_tokens": new_tokens,
        "load_s": round(load_s, 2),
        "first_call_s": round(first_call_s, 2),
        "compile_s": round(max(first_call_s - generate_s, 0.0), 2),
        "generate_s": round(generate_s, 3),
        "tokens_per_s": round(generated / generate_s, 1),
        "prefill_s": round(prefill_s, 3),
        "decode_step_mb": round(step_bytes / 1e6, 1),
        "decode_gb_s": decode_gb_s,
        "bandwidth_gb_s": round(bandwidth, 1),
        "bandwidth_share": share,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
