"""tunix-datasets' plugin: it registers the built-in dataset providers, the answer checks
their items name (``code``, ``reasoning-gym``), the row transforms and the ``datasets``
command, through the same hooks every third-party plugin uses. Every ``tunix`` command
loads it, so it imports no provider: the registries and the command are lazy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tunix_core.hookspecs import hookimpl
from tunix_core.protocols import AnswerCheckRegistry, DatasetRegistry, TransformRegistry
from tunix_datasets.providers import register_builtin_answer_checks, register_builtin_datasets
from tunix_datasets.transforms import register_builtin_transforms

if TYPE_CHECKING:
    from tunix_core.command_group import TunixGroup


@hookimpl
def tunix_register_datasets(registry: DatasetRegistry) -> None:
    register_builtin_datasets(registry)


@hookimpl
def tunix_register_answer_checks(registry: AnswerCheckRegistry) -> None:
    register_builtin_answer_checks(registry)


@hookimpl
def tunix_register_transforms(registry: TransformRegistry) -> None:
    register_builtin_transforms(registry)


@hookimpl
def tunix_register_commands(cli: TunixGroup) -> None:
    cli.add_lazy_command(
        "datasets", "tunix_datasets.cli:datasets",
        "Datasets registered by installed plugins.",
    )  # fmt: skip
