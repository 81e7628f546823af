"""Commands that declare they run a model re-execute once with glibc's huge-page tunable;
the others never do, and the core knows no other package's command names."""

import os
import subprocess
import sys

import pytest

from tunix_core.cli import cli
from tunix_core.command_group import TunixGroup
from tunix_core.hookspecs import hookimpl
from tunix_core.hugepages import OPT_OUT, TUNABLE, _glibc_supports_hugetlb, reexec_environment
from tunix_core.plugins import PluginHost, plugin_module

HEAVY = {"run", "bench", "eval"}


@pytest.mark.parametrize("args", [["run", "--trainer", "jax"], ["bench", "train"], ["eval"]])
def test_heavy_commands_get_the_tunable(args):
    env = reexec_environment(args, {"PATH": "/bin"}, supported=True, commands=HEAVY)
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": TUNABLE}


@pytest.mark.parametrize("args", [[], ["--help"], ["plugins"], ["datasets", "list"], ["--version"]])
def test_light_commands_stay_in_process(args):
    assert reexec_environment(args, {}, supported=True, commands=HEAVY) is None


def test_existing_tunables_are_kept_and_never_doubled():
    env = reexec_environment(["run"], {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"},
                             supported=True, commands=HEAVY)  # fmt: skip
    assert env is not None
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"
    assert reexec_environment(["run"], env, supported=True, commands=HEAVY) is None
    off = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
    assert reexec_environment(["run"], off, supported=True, commands=HEAVY) is None  # the user's choice wins


def test_opt_out_and_unsupported_libc():
    assert reexec_environment(["run"], {OPT_OUT: "1"}, supported=True, commands=HEAVY) is None
    assert reexec_environment(["run"], {}, supported=False, commands=HEAVY) is None


@hookimpl
def _register_commands(cli):
    cli.add_lazy_command("train-it", "somewhere:train_it", "trains", huge_pages=True)
    cli.add_lazy_command("show-it", "somewhere:show_it", "shows")


@hookimpl
def _register_then_fail(cli):
    cli.add_lazy_command("half-heavy", "somewhere:half", "never", huge_pages=True)
    raise RuntimeError("boom")


def test_plugins_declare_the_commands_that_want_huge_pages(monkeypatch):
    monkeypatch.delenv("TUNIX_STRICT_PLUGINS", raising=False)  # the failing plugin is skipped
    host = PluginHost()
    host.add_plugin(plugin_module("heavy-test", tunix_register_commands=_register_commands),
                    "heavy", "tunix-heavy-test")  # fmt: skip
    host.add_plugin(plugin_module("half-test", tunix_register_commands=_register_then_fail),
                    "half", "tunix-half-test")  # fmt: skip
    group = TunixGroup("tunix")
    host.register_commands(group)
    # The failed plugin's declaration goes with its command.
    assert group.huge_page_commands == {"train-it"}
    assert "run" in cli.huge_page_commands  # the core's own
    assert reexec_environment(["train-it"], {}, supported=True, commands=group.huge_page_commands)
    assert reexec_environment(["show-it"], {}, supported=True, commands=group.huge_page_commands) is None


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and _glibc_supports_hugetlb()),
    reason="needs Linux with glibc >= 2.35",
)
def test_the_process_really_reexecutes_with_the_tunable():
    # `tunix run --help` through the CLI's entry point; only the re-executed process gets
    # to exit, so the line is printed once.
    code = (
        "import atexit, os, sys; sys.argv = ['tunix', 'run', '--help']; "
        "atexit.register(lambda: print('TUNABLES=' + os.environ.get('GLIBC_TUNABLES', ''))); "
        "from tunix_core.cli import main; main()"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", OPT_OUT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"TUNABLES={TUNABLE}"
    assert result.stdout.count("TUNABLES=") == 1
