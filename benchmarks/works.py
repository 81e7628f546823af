"""The measured works and their shapes, shared by both sides of the comparison.

Plain Python with no dependencies: each side imports this file by path, in its own
environment (the google-tunix side's holds google-tunix, qwix and tunix-google, not all
of tunix).
"""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Work:
    """One measurement, the same on both sides.

    ``kind`` is ``train`` (``steps`` timed steps after the first call, every token of
    ``batch x seq`` in the loss) or ``generate`` (greedy, ``batch`` random prompts of
    ``prompt_len`` tokens, ``new_tokens`` each, no stop token). ``matmul_dtype`` is
    tunix's ``model.options.matmul_dtype`` (google-tunix has no such setting and always
    runs ``dtype``)."""

    name: str
    kind: str
    model: str  # a tunix preset: gemma3-270m, gemma3-1b
    dtype: str  # parameters and compute: float32 or bfloat16
    batch: int
    seq: int = 0
    lora_rank: int | None = None  # None: full fine-tune
    steps: int = 3
    prompt_len: int = 0
    new_tokens: int = 0
    repeats: int = 3
    matmul_dtype: str = "float32"


# The CPU rows of docs/performance.md: Gemma 3 270M, f32 parameters; the -bf16mm rows run
# tunix's weight matmuls on bf16 operands (the peer's side of those rows is its f32 run).
CPU_SUITE = (
    Work("train-lora", "train", "gemma3-270m", "float32", batch=4, seq=256, lora_rank=16),
    Work("train-lora-bf16mm", "train", "gemma3-270m", "float32", batch=4, seq=256, lora_rank=16,
         matmul_dtype="bfloat16"),
    Work("train-full", "train", "gemma3-270m", "float32", batch=4, seq=256),
    Work("generate", "generate", "gemma3-270m", "float32", batch=8, prompt_len=32, new_tokens=64),
    Work("generate-bf16mm", "generate", "gemma3-270m", "float32", batch=8, prompt_len=32,
         new_tokens=64, matmul_dtype="bfloat16"),
)
# The accelerator rows: Gemma 3 1B, bf16 (../shared/ANCHORS.md measures the same shapes).
ACCELERATOR_SUITE = (
    Work("train-full", "train", "gemma3-1b", "bfloat16", batch=8, seq=1024, steps=5),
    Work("train-full-16x2048", "train", "gemma3-1b", "bfloat16", batch=16, seq=2048, steps=3),
    Work("train-lora", "train", "gemma3-1b", "bfloat16", batch=8, seq=1024, lora_rank=16, steps=5),
    Work("generate", "generate", "gemma3-1b", "bfloat16", batch=32, prompt_len=64, new_tokens=256),
)
# The smallest rows, to check both sides run (tunix's tiny test model, train rows only:
# the google-tunix side generates with google-tunix's own presets, which have no tiny one).
TINY_SUITE = (
    Work("train-lora", "train", "tiny-gemma3", "float32", batch=2, seq=32, lora_rank=4, steps=2),
    Work("train-full", "train", "tiny-gemma3", "float32", batch=2, seq=32, steps=2),
)
SUITES = {"cpu": CPU_SUITE, "accelerator": ACCELERATOR_SUITE, "tiny": TINY_SUITE}
# The projections that get LoRA adapters on both sides: attention and MLP.
LORA_ALPHA = 32.0
FIRST_ORDINARY_ID = 10  # random prompt and training ids start above the special ids


def work_by_name(suite: str, name: str) -> Work:
    for work in SUITES[suite]:
        if work.name == name:
            return work
    raise SystemExit(f"no work {name!r} in suite {suite!r}: {[w.name for w in SUITES[suite]]}")


def tokens_per_step(work: Work) -> int:
    return work.batch * work.seq if work.kind == "train" else work.batch * work.new_tokens


def peak_rss_gib() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def device_figures() -> dict[str, Any]:
    """The device JAX runs on and, on accelerators, its peak memory in use."""
    import jax

    device = jax.devices()[0]
    figures: dict[str, Any] = {
        "platform": device.platform,
        "device": device.device_kind,
        "devices": jax.device_count(),
        "jax": jax.__version__,
    }
    stats = getattr(device, "memory_stats", lambda: None)() or {}
    if "peak_bytes_in_use" in stats:
        figures["device_peak_gib"] = round(stats["peak_bytes_in_use"] / 2**30, 2)
    return figures


def main(measure: Any) -> None:
    """``python SIDE.py SUITE WORK``: measure one work and print one JSON line."""
    suite, name = sys.argv[1], sys.argv[2]
    work = work_by_name(suite, name)
    figures = measure(work)
    figures.update(device_figures())
    figures["peak_rss_gib"] = peak_rss_gib()
    print(json.dumps({"work": asdict(work), "figures": figures}), flush=True)
