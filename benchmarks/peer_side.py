"""One work measured with google-tunix: ``python peer_side.py SUITE WORK``, in an
environment with ``google-tunix`` and ``qwix`` (and not necessarily this project).

The train step is google-tunix's own ``PeftTrainer`` step (its default loss: a
full-vocabulary log-softmax), jitted by the trainer, with LoRA from qwix on the same
projections; generation is its ``Sampler``, greedy. Random weights, as on our side.
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

LORA_MODULES = ".*q_einsum|.*kv_einsum|.*attn_vec_einsum|.*gate_proj|.*up_proj|.*down_proj"
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
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    import qwix
    from tunix.sft import peft_trainer
    from tunix.sft.utils import make_causal_attn_mask

    model, load_s = build_model(work)
    if work.lora_rank is not None:
        provider = qwix.LoraProvider(module_path=LORA_MODULES, rank=work.lora_rank, alpha=LORA_ALPHA)
        model = qwix.apply_lora_to_model(model, provider, **model.get_model_input())
    config = peft_trainer.TrainingConfig(eval_every_n_steps=10**9, max_steps=work.steps + 1)
    trainer = peft_trainer.PeftTrainer(model, optax.adamw(1e-4), config)
    train_step, _ = trainer.jit_train_and_eval_step()

    rng = np.random.default_rng(0)
    tokens = rng.integers(FIRST_ORDINARY_ID, model.config.num_embed, (work.batch, work.seq + 1))
    mask = jnp.ones((work.batch, work.seq + 1), jnp.bool_)
    inputs = {
        "input_tokens": jnp.asarray(tokens, jnp.int32),
        "input_mask": mask,
        "positions": jnp.broadcast_to(jnp.arange(work.seq + 1), (work.batch, work.seq + 1)),
        "attention_mask": make_causal_attn_mask(mask),
    }
    began = time.perf_counter()
    loss, _, _ = train_step(inputs)
    jax.block_until_ready(loss)
    first_step_s = time.perf_counter() - began
    times = []
    for _ in range(work.steps):
        began = time.perf_counter()
        loss, _, _ = train_step(inputs)
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - began)
    step_s = statistics.median(times)
    return {
        "load_s": round(load_s, 2),
        "first_step_s": round(first_step_s, 2),
        "step_s": round(step_s, 4),
        # The peer's step sees seq + 1 tokens and predicts seq of them, as ours does.
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
