"""tunix-google's plugin: registers the ``google-tunix-sft`` trainer.

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
