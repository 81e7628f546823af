"""tunix-google's plugin: registers the ``google-tunix-sft``, ``google-tunix-grpo`` and
``google-tunix-dpo`` trainers.

Targets are lazy strings, so loading this module imports neither JAX nor google-tunix.
"""

from __future__ import annotations

from tunix_core.hookspecs import hookimpl
from tunix_core.protocols import TrainerRegistry


@hookimpl
def tunix_register_trainers(registry: TrainerRegistry) -> None:
    registry.register(
        "google-tunix-sft",
        "tunix_google.sft:GoogleTunixSftTrainer",
        description="SFT with google-tunix's own PeftTrainer (LoRA through qwix, or full) on "
        "tunix's rendered examples; needs tunix-google[google-tunix]",
    )
    registry.register(
        "google-tunix-grpo",
        "tunix_google.grpo:GoogleTunixGrpoTrainer",
        description="GRPO with google-tunix's own GRPOLearner and RLCluster on tunix's prompts, "
        "tunix's reward plugins as its reward functions; needs tunix-google[google-tunix]",
    )
    registry.register(
        "google-tunix-dpo",
        "tunix_google.dpo:GoogleTunixDpoTrainer",
        description="DPO with google-tunix's own DPOTrainer on tunix's preference pairs "
        "(trainer.options.pairs); needs tunix-google[google-tunix]",
    )
