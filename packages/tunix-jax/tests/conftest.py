"""Fixtures shared by the tunix-jax tests outside model/ and train/."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from tunix_core import builtin
from tunix_core.cli import TunixGroup, cli
from tunix_core.plugins import PluginHost
from tunix_jax import plugin


@pytest.fixture(scope="module")
def tunix() -> Callable[..., Result]:
    """``tunix ARGS`` with the core's commands and tunix-jax's plugin (its backend,
    trainer and commands), through the real Click host."""
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(plugin, "jax", "tunix-jax")
    host.fill_registries()
    group = TunixGroup("tunix", commands=dict(cli.commands))
    group.lazy_commands.update(cli.lazy_commands)
    host.register_commands(group)

    def invoke(*args: object) -> Result:
        return CliRunner().invoke(group, [str(a) for a in args], obj=host)

    return invoke
