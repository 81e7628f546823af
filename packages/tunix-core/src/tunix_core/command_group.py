"""The ``tunix`` root command's group: the type that ``tunix_register_commands`` hands to
plugins, kept apart from :mod:`tunix_core.cli` so the hook specifications can name it."""

from __future__ import annotations

from typing import Any

import click

from tunix_core.errors import TunixError
from tunix_core.registry import Entry


class TunixGroup(click.Group):
    """The root command: turns :class:`TunixError` into one ``Error: ...`` line and its exit
    code, and holds lazy commands that plugins add with :meth:`add_lazy_command`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands: dict[str, tuple[str, str]] = {}
        # Commands that run a model: `tunix` re-executes itself for them with huge pages.
        self.huge_page_commands: set[str] = set()

    def add_lazy_command(
        self, name: str, target: str, short_help: str, *, huge_pages: bool = False
    ) -> None:
        """Add command ``name`` whose click object ``target`` (``"module:attribute"``) is
        imported only when the command runs or shows its own help, so that ``tunix --help``
        stays fast however heavy the command's module is. ``huge_pages``: the command runs a
        model, and starts faster on huge pages (:mod:`tunix_core.hugepages`)."""
        self.lazy_commands[name] = (target, short_help)
        if huge_pages:
            self.huge_page_commands.add(name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            target = self.lazy_commands[cmd_name][0]
            command = Entry(cmd_name, target, distribution="a plugin").load()
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(map(len, self.list_commands(ctx)), default=0)
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if command is None:
                rows.append((name, self.lazy_commands[name][1]))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TunixError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(exc.exit_code)
