"""tunix-jax's plugin: registers the ``jax`` model backend, the ``jax``, ``grpo``, ``dpo``,
``simpo`` and ``orpo`` trainers and the ``bench`` and ``export`` commands.

Targets are lazy strings, so loading this module never imports JAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunix_core.hookspecs import hookimpl
from tunix_core.protocols import BackendRegistry, TrainerRegistry

if TYPE_CHECKING:
    from tunix_core.command_group import TunixGroup


@hookimpl
def tunix_register_backends(registry: BackendRegistry) -> None:
    registry.register(
        "jax",
        "tunix_jax.backend:JaxBackend",
        description="Gemma 2/3 in Flax NNX: Kaggle Flax checkpoints, safetensors and GGUF in; "
        "greedy generation and log-probabilities over a device mesh; exports google-tunix loads",
    )


@hookimpl
def tunix_register_trainers(registry: TrainerRegistry) -> None:
    registry.register(
        "jax",
        "tunix_jax.sft.trainer:JaxTrainer",
        description="SFT of Gemma 2/3 in JAX/Flax NNX: LoRA or full, AdamW/Adafactor, "
        "device mesh (data+FSDP), exact resume, time budget",
    )
    registry.register(
        "grpo",
        "tunix_jax.rl.grpo.trainer:GrpoTrainer",
        description="GRPO of Gemma 2/3 with reward plugins: groups of samples, clipped "
        "token-level objective, KL to the starting model; LoRA or full, exact resume",
    )
    preference = "tunix_jax.rl.preference.trainer"
    registry.register(
        "dpo",
        f"{preference}:DpoTrainer",
        description="DPO of Gemma 2/3 on prompt/chosen/rejected pairs (trainer.options.pairs), "
        "reference = the starting model; LoRA or full, exact resume",
    )
    registry.register(
        "simpo",
        f"{preference}:SimpoTrainer",
        description="SimPO of Gemma 2/3 on preference pairs: length-normalised, no reference",
    )
    registry.register(
        "orpo",
        f"{preference}:OrpoTrainer",
        description="ORPO of Gemma 2/3 on preference pairs: NLL plus odds ratio, no reference",
    )


@hookimpl
def tunix_register_commands(cli: TunixGroup) -> None:
    cli.add_lazy_command(
        "bench",
        "tunix_jax.cli:bench",
        "Measure sampler and trainer throughput (tokens/s, MFU).",
        huge_pages=True,
    )
    cli.add_lazy_command(
        "export",
        "tunix_jax.cli:export",
        "Write a run's fine-tuned model as Hugging Face safetensors, GGUF or Orbax.",
    )
