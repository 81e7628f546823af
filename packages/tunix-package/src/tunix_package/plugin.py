"""tunix-package's plugin: the ``kaggle`` packager and the ``tunix package`` and ``tunix
gate`` commands.

Targets are lazy strings and the command imports its heavy parts in its body, so loading
this module never imports JAX.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunix_core.hookspecs import hookimpl
from tunix_core.protocols import PackagerRegistry

if TYPE_CHECKING:
    from tunix_core.command_group import TunixGroup


@hookimpl
def tunix_register_packagers(registry: PackagerRegistry) -> None:
    registry.register(
        "kaggle",
        "tunix_package.kaggle:KagglePackager",
        description="Kaggle submission: evidence zip with checksums, Orbax model export "
        "beside it, round-trip check",
    )


@hookimpl
def tunix_register_commands(cli: TunixGroup) -> None:
    cli.add_lazy_command(
        "package",
        "tunix_package.cli:package_command",
        "Build and validate the submission bundle of a run.",
    )
    cli.add_lazy_command(
        "gate",
        "tunix_package.gate_cli:gate_command",
        "Sample a run's export through google-tunix's own loader and Sampler.",
    )
