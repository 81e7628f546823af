"""Seconds to load a model as a trainer starts: random weights with LoRA adapters, or the
default Gemma 3 270M from its GGUF.

Usage: ``JAX_PLATFORMS=cpu python benchmarks/load.py [PRESET ...] [--weights W] [--repeats N]``

Each measurement is a fresh process (JAX compiles again, as every ``tunix run`` does,
with no persistent compilation cache); it times ``load_model(PRESET, W)`` after JAX is
imported and, for ``--weights random`` (the default), ``apply_lora`` on the default
targets at rank 16. ``--weights default`` runs one untimed load first, so the timed
processes find the GGUF in the OS page cache and its vocabulary converted (warm).
Prints one JSON line per preset with the minimum over the repeats (the machine may be
shared) and the phases of that run.
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
model, _ = load_model({preset!r}, {weights!r}, seed=0)
jax.block_until_ready(nnx.state(model))
loaded = time.perf_counter()
figures = {{"load_s": loaded - began}}
if {weights!r} == "random":
    apply_lora(model, DEFAULT_LORA_TARGETS, rank=16, alpha=32.0, seed=0)
    jax.block_until_ready(nnx.state(model))
    figures["lora_s"] = time.perf_counter() - loaded
figures["total_s"] = time.perf_counter() - began
print(json.dumps(figures))
"""


def measure(preset: str, weights: str) -> dict[str, float]:
    code = ONE_RUN.format(preset=preset, weights=weights)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)  # fmt: skip
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("presets", nargs="*", default=["gemma3-270m", "tiny-gemma3"])
    parser.add_argument("--weights", default="random", help="random (default) or default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for preset in args.presets:
        if args.weights != "random":
            measure(preset, args.weights)  # warms the page cache and the vocabulary cache
        runs = [measure(preset, args.weights) for _ in range(args.repeats)]
        best = min(runs, key=lambda run: run["total_s"])
        print(json.dumps({"work": "load", "preset": preset, "weights": args.weights,
                          "repeats": args.repeats,
                          **{k: round(v, 2) for k, v in best.items()}}))  # fmt: skip


if __name__ == "__main__":
    main()
