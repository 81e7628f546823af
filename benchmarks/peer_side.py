"""One work measured with google-tunix: ``python peer_side.py SUITE WORK``, in an
environment with ``tunix-google[google-tunix]`` (google-tunix and qwix) and the tunix
packages it needs.

The train rows run the ``google-tunix-sft`` trainer's own code (``tunix_google.sft``): the
random-weights model moved into google-tunix's Gemma module, LoRA through qwix on the
trainer's default targets, tunix's optimizer, and google-tunix's ``PeftTrainer`` step (its
default loss, a full-vocabulary log-softmax, jitted by the trainer) on the input the
trainer feeds it, so the row times what ``--trainer google-tunix-sft`` runs. Generation
is google-tunix's ``Sampler``, greedy, on its own Gemma 3 preset with random weights.
Each line's ``code_path`` says which of the two ran.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from works import FIRST_ORDINARY_ID, LORA_ALPHA, Work, main

PRESETS = {"gemma3-270m": "gemma3_270m", "gemma3-1b": "gemma3_1b_pt"}


class IdTokenizer:
    """Prompts are written as space-separated token ids, so both sides feed the model
    exactly the same ids without a vocabulary file."""

    def encode(self, text: str, **_: Any) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids: Any, **_: Any) -> str:
        return " ".join(str(int(i)) for i in ids)

    def bos_id(self) -> int:
        return 2

    def eos_id(self) -> int:
        return 1

    def pad_id(self) -> int:
        return 0


def build_model(work: Work) -> tuple[Any, float]:
    import jax
    import jax.numpy as jnp
    from flax import nnx
    from tunix.models.gemma3 import model as gemma3

    config = getattr(gemma3.ModelConfig, PRESETS[work.model])()
    config = dataclasses.replace(config, param_dtype=jnp.dtype(work.dtype))
    began = time.perf_counter()
    model = gemma3.Gemma3(config, rngs=nnx.Rngs(0))
    jax.block_until_ready(nnx.state(model))
    return model, time.perf_counter() - began


def measure_train(work: Work) -> dict[str, Any]:
    import importlib
    import tempfile
    from importlib import metadata

    import jax
    import numpy as np
    from flax import nnx

    from tunix_core.config import structure_config
    from tunix_google.sft import NAME, micro_step, peft_trainer, sft_options, training_input
    from tunix_jax.dtypes import DTYPES
    from tunix_jax.weights.loading import load_model

    config = structure_config({
        "model": {"preset": work.model, "weights": "random", "dtype": work.dtype},
        "trainer": {"name": NAME},
        "training": {"batch_size": work.batch, "max_seq_len": work.seq, "steps": work.steps + 1,
                     "lora": {"enabled": work.lora_rank is not None, "rank": work.lora_rank or 16,
                              "alpha": LORA_ALPHA}},
    })  # fmt: skip
    # tunix_google imports google-tunix and qwix when it builds the trainer: here, before
    # the clock starts, as tunix's side imports its modules first.
    for module in ("tunix.sft.peft_trainer", "tunix.sft.sharding_utils", "qwix"):
        importlib.import_module(module)
    began = time.perf_counter()
    transformer, _ = load_model(
        work.model, "random", dtype=DTYPES[work.dtype], seed=config.run.seed
    )
    with tempfile.TemporaryDirectory() as checkpoints:
        trainer = peft_trainer(config, sft_options(config), transformer, work.steps + 1,
                               Path(checkpoints))  # fmt: skip
        jax.block_until_ready(nnx.state(trainer.model))
        load_s = time.perf_counter() - began
        step = micro_step(trainer)

        # One batch as the trainer's data stream gives it: every row real, every target
        # in the loss (the step sees seq + 1 tokens and predicts seq of them, as ours does).
        rng = np.random.default_rng(0)
        vocab = transformer.config.vocab_size
        tokens = rng.integers(FIRST_ORDINARY_ID, vocab, (work.batch, work.seq + 1), dtype=np.int32)
        batch = {
            "inputs": tokens[:, :-1],
            "targets": tokens[:, 1:],
            "segment_ids": np.ones((work.batch, work.seq), np.int32),
            "weights": np.ones((work.batch, work.seq), np.float32),
        }
        model_input = training_input(batch)
        began = time.perf_counter()
        loss, _, _ = step(model_input)
        jax.block_until_ready(loss)
        first_step_s = time.perf_counter() - began
        times = []
        for _ in range(work.steps):
            began = time.perf_counter()
            loss, _, _ = step(model_input)
            jax.block_until_ready(loss)
            times.append(time.perf_counter() - began)
        trainer.checkpoint_manager.close()
    step_s = statistics.median(times)
    return {
        "code_path": f"tunix_google.sft ({NAME})",
        "google_tunix": metadata.version("google-tunix"),
        "load_s": round(load_s, 2),
        "first_step_s": round(first_step_s, 2),
        "step_s": round(step_s, 4),
        "tokens_per_s": round(work.batch * work.seq / step_s, 1),
        "loss": round(float(loss), 4),
    }


def measure_generate(work: Work) -> dict[str, Any]:
    import numpy as np
    from tunix.generate import sampler as sampler_lib

    model, load_s = build_model(work)
    config = model.config
    cache = sampler_lib.CacheConfig(
        cache_size=work.prompt_len + work.new_tokens, num_layers=config.num_layers,
        num_kv_heads=config.num_kv_heads, head_dim=config.head_dim,
    )  # fmt: skip
    sampler = sampler_lib.Sampler(model, IdTokenizer(), cache)
    rng = np.random.default_rng(0)
    # The tokenizer's bos makes each prompt prompt_len tokens long, as on our side.
    prompts = [" ".join(map(str, rng.integers(FIRST_ORDINARY_ID, config.num_embed, work.prompt_len - 1)))
               for _ in range(work.batch)]  # fmt: skip

    def timed_call() -> float:
        began = time.perf_counter()
        out = sampler(prompts, max_generation_steps=work.new_tokens, max_prompt_length=work.prompt_len,
                      eos_tokens=[-1], temperature=0.0)  # fmt: skip
        elapsed = time.perf_counter() - began
        assert all(len(tokens) == work.new_tokens for tokens in out.tokens), "a row stopped early"
        return elapsed

    first_call_s = timed_call()
    generate_s = min(timed_call() for _ in range(work.repeats))
    return {
        "load_s": round(load_s, 2),
        "first_call_s": round(first_call_s, 2),
        "generate_s": round(generate_s, 3),
        "tokens_per_s": round(work.batch * work.new_tokens / generate_s, 1),
    }


def measure(work: Work) -> dict[str, Any]:
    return measure_train(work) if work.kind == "train" else measure_generate(work)


if __name__ == "__main__":
    main(measure)
