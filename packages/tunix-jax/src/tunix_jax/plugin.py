"""tunix-jax's plugin: registers the ``jax`` trainer and the ``bench`` commands.

Targets are lazy strings, so loading this module never imports JAX.
"""

from __future__ import annotations

import click

from tunix_core.hookspecs import hookimpl


@hookimpl
def tunix_register_commands(cli: click.Group) -> None:
    from tunix_jax.cli import bench

    cli.add_command(bench)
