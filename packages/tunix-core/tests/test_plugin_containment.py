"""A broken plugin is skipped whole, never half-registered, and never takes the CLI down.

These tests run the non-strict path, so they unset TUNIX_STRICT_PLUGINS (which the nox
sessions set) unless a test turns it back on."""

from __future__ import annotations

import pytest

from tunix_core import cli as cli_module
from tunix_core.errors import PluginError
from tunix_core.plugins import build_host

GOOD = """
from tunix_core.hookspecs import hookimpl

@hookimpl
def tunix_register_datasets(registry):
    registry.register("shared-data", "good_plugin:Provider")
"""

# Registers a trainer (an earlier hook), then a dataset, then fails: nothing may remain.
HALF = """
import sys
from tunix_core.hookspecs import hookimpl

@hookimpl
def tunix_register_datasets(registry):
    registry.register("half-data", "half_plugin:Provider")
    registry.register("shared-data", "half_plugin:Provider")
    {failure}

@hookimpl
def tunix_register_trainers(registry):
    registry.register("half-trainer", "half_plugin:Trainer")

@hookimpl
def tunix_register_commands(cli):
    raise AssertionError("a failed plugin's other hooks must not be called")
"""


def _info(host, name):
    return next(p for p in host.plugins if p.name == name)


@pytest.mark.parametrize(
    ("module", "failure", "error"),
    [
        ("raising_plugin", "raise RuntimeError('boom')",
         "in tunix_register_datasets: RuntimeError: boom"),
        ("exiting_plugin", "sys.exit(3)", "in tunix_register_datasets: SystemExit: 3"),
    ],
)  # fmt: skip
def test_a_failing_registration_hook_withdraws_everything_the_plugin_registered(
    site, module, failure, error
):
    site("tunix-good", "good_plugin", GOOD)
    site("tunix-half", module, HALF.format(failure=failure))
    host = build_host()
    info = _info(host, module)
    assert info.status == "failed" and info.error == error
    assert "half-trainer" not in host.trainers and "half-data" not in host.datasets
    # The name it clashed on goes back to the plugin that registered it first.
    assert host.conflicts() == [] and host.datasets.entry("shared-data").distribution == "tunix-good"
    assert host.provides().get("tunix-half") is None
    host.register_commands(cli_module.cli)  # the failed plugin's command hook is not called


def test_a_plugin_that_exits_on_import_is_skipped(site):
    site("tunix-good", "good_plugin", GOOD)
    site("tunix-exiter", "exiter_plugin", "import sys\nsys.exit(3)\n")
    host = build_host()
    assert _info(host, "exiter_plugin").error == "SystemExit: 3"
    assert "shared-data" in host.datasets


def test_a_name_with_a_colon_fails_only_its_plugin(site):
    source = GOOD.replace('"shared-data"', '"my:data"')
    site("tunix-colon", "colon_plugin", source)
    host = build_host()
    assert _info(host, "colon_plugin").error == (
        "in tunix_register_datasets: tunix_core.registry.RegistryError: invalid dataset name 'my:data' from "
        "tunix-colon: a name is a non-empty string without ':' (it separates an argument) "
        "or surrounding whitespace"
    )


def test_ctrl_c_during_a_plugin_import_is_not_contained(site):
    site("tunix-slow", "slow_plugin", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        build_host()


def test_strict_mode_still_raises(site, monkeypatch):
    site("tunix-half", "half_plugin", HALF.format(failure="raise RuntimeError('boom')"))
    monkeypatch.setenv("TUNIX_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"'half_plugin' from tunix-half 1.0 failed to load "
                                          r"\(in tunix_register_datasets: RuntimeError: boom\)"):  # fmt: skip
        build_host()


def test_a_failing_command_hook_removes_the_commands_it_added(site):
    site("tunix-cmd", "cmd_plugin", """
        import click
        from tunix_core.hookspecs import hookimpl

        @hookimpl
        def tunix_register_commands(cli):
            cli.add_command(click.Command("half-command"))
            cli.add_lazy_command("half-lazy", "cmd_plugin:nothing", "never")
            raise RuntimeError("boom")
    """)  # fmt: skip
    host = build_host()
    group = cli_module.TunixGroup(name="test")
    host.register_commands(group)
    assert "half-command" not in group.commands and "half-lazy" not in group.lazy_commands
    assert _info(host, "cmd_plugin").error == "in tunix_register_commands: RuntimeError: boom"


@pytest.mark.parametrize(
    ("module", "source"),
    [("exits_on_import", "import sys\nsys.exit(3)\n"),
     ("raises_in_hook", HALF.format(failure="raise RuntimeError('boom')"))],
)  # fmt: skip
def test_every_command_survives_a_broken_plugin(site, run_main, module, source):
    site("tunix-broken", module, source)
    code, out, err = run_main("--version")
    assert code == 0 and out.startswith("tunix, version ")
    assert err == (f"warning: 1 tunix plugin(s) failed to load: {module} (tunix-broken); "
                   "see `tunix plugins`\n")  # fmt: skip
    code, out, _ = run_main("plugins")
    assert code == 0
    assert f"tunix-broken 1.0  [{module}]  failed\n    error: " in out
