"""The core's own plugin: it registers the built-in dataset providers through the same
hooks every third-party plugin uses."""

from __future__ import annotations

from tunix_core.data.providers import register_builtin_datasets
from tunix_core.hookspecs import hookimpl
from tunix_core.registry import DatasetRegistry


@hookimpl
def tunix_register_datasets(registry: DatasetRegistry) -> None:
    register_builtin_datasets(registry)
