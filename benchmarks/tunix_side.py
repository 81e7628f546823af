"""One work measured with this project's code: ``python tunix_side.py SUITE WORK``.

The train step is the one ``tunix run`` compiles (``tunix bench train``); generation is
the sampler ``tunix run`` evaluates with (``tunix bench generate``). Random weights.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from works import Work, main

# The decode's rate against the device's memory bandwidth (absent before they existed).
DECODE_FIGURES = ("prefill_s", "decode_step_mb", "decode_gb_s", "bandwidth_gb_s", "bandwidth_share")


def measure(work: Work) -> dict[str, Any]:
    # Passed only when set, so that commits from before the option can be measured too.
    matmuls = {} if work.matmul_dtype == "float32" else {"matmul_dtype": work.matmul_dtype}
    if work.kind == "train":
        from tunix_jax.training.bench import run_train_bench

        result = run_train_bench(
            preset=work.model, batch=work.batch, seq=work.seq, dtype=work.dtype,
            lora=work.lora_rank is not None, rank=work.lora_rank or 16, steps=work.steps, **matmuls,
        )  # fmt: skip
        return {
            "load_s": result["load seconds"],
            "first_step_s": result["first step seconds"],
            "step_s": result["step seconds (median)"],
            "tokens_per_s": result["tokens/s"],
            "loss": result["loss"],
        }
    from tunix_jax.models.gemma.bench import benchmark_generate

    result = benchmark_generate(
        work.model, batch=work.batch, new_tokens=work.new_tokens, prompt_len=work.prompt_len,
        dtype=work.dtype, repeats=work.repeats, **matmuls,
    )  # fmt: skip
    return {
        "load_s": result["load_s"],
        "first_call_s": result["first_call_s"],
        "generate_s": result["generate_s"],
        "tokens_per_s": result["tokens_per_s"],
        **{key: result[key] for key in DECODE_FIGURES if key in result},
    }


if __name__ == "__main__":
    main(measure)
