"""Seconds to build a random-weights model with LoRA adapters, as a trainer starts.

Usage: ``JAX_PLATFORMS=cpu python benchmarks/load_random.py [PRESET ...] [--repeats N]``

Each measurement is a fresh process (JAX compiles again, as every ``tunix run`` does,
with no persistent compilation cache); it times ``load_model(PRESET, "random")`` and
``apply_lora`` on the default targets at rank 16, after JAX is imported. Prints one
JSON line per preset with the minimum over the repeats (the machine may be shared).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

ONE_RUN = """
import json, time
import jax
from flax import nnx
from tunix_jax.options import DEFAULT_LORA_TARGETS
from tunix_jax.training.lora import apply_lora
from tunix_jax.weights.loading import load_model

jax.numpy.zeros(1).block_until_ready()
began = time.perf_counter()
model, _ = load_model({preset!r}, "random", seed=0)
jax.block_until_ready(nnx.state(model))
loaded = time.perf_counter()
apply_lora(model, DEFAULT_LORA_TARGETS, rank=16, alpha=32.0, seed=0)
jax.block_until_ready(nnx.state(model))
done = time.perf_counter()
print(json.dumps({{"random_s": loaded - began, "lora_s": done - loaded, "total_s": done - began}}))
"""


def measure(preset: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", ONE_RUN.format(preset=preset)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=["gemma3-270m", "tiny-gemma3"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for preset in args.presets:
        runs = [measure(preset) for _ in range(args.repeats)]
        best = min(runs, key=lambda run: run["total_s"])
        print(json.dumps({"work": "load_random", "preset": preset, "repeats": args.repeats,
                          **{k: round(v, 2) for k, v in best.items()}}))  # fmt: skip


if __name__ == "__main__":
    main()
