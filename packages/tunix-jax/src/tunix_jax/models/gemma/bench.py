"""Sampler throughput: generated tokens per second and first-call (compile) time.

Prompts are random token ids (never special ids) of a fixed length, stop tokens are
disabled so every row generates exactly `new_tokens` tokens, and the timed figure is the
fastest of `repeats` further calls, which reuse the first call's compilation (compile_s is
the first call minus that). Throughput counts generated
tokens only (batch x new_tokens) over the whole call, prefill included.
"""

from __future__ import annotations

import resource
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from tunix_jax.matmuls import resolve_matmul_dtype
from tunix_jax.models.gemma.sampler import Sampler
from tunix_jax.weights.loading import load_model
from tunix_jax.weights.loading import matmul_dtype as matmul_dtype_of

_FIRST_ORDINARY_ID = 10  # above pad/eos/bos/unk/mask and the first unused ids


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

    def timed_call() -> float:
        begin = time.perf_counter()
        result = sampler.generate_ids(prompts, max_new_tokens=new_tokens, stop_ids=())
        elapsed = time.perf_counter() - begin
        assert all(len(tokens) == new_tokens for tokens in result.tokens)
        return elapsed

    first_call_s = timed_call()
    generate_s = min(timed_call() for _ in range(max(repeats, 1)))
    generated = batch * new_tokens
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
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
