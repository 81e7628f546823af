"""Every error the ``tunix`` entry point meets ends as one line on stderr, never a traceback."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import click
import pytest

from tunix_core import cli as cli_module


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch):
    """Add a ``tunix boom`` command that raises the given exception."""

    def add(exc: BaseException) -> None:
        @click.command("boom")
        def boom() -> None:
            raise exc

        monkeypatch.setitem(cli_module.cli.commands, "boom", boom)

    return add


def test_a_config_file_that_is_not_utf8_is_one_line(run_main, tmp_path: Path):
    config = tmp_path / "latin1.yaml"
    config.write_bytes(b"run:\n  name: caf\xe9\n")
    code, _, err = run_main("run", "-c", str(config), "--trainer", "jax", "--dataset", "x")
    assert (code, err) == (2, f"Error: {config}:2: not UTF-8 text (byte 0xe9); save the config "
                              "file as UTF-8\n")  # fmt: skip


def test_a_name_two_plugins_claim_is_one_line(run_main, tmp_path: Path, monkeypatch, plugin_maker):
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("TUNIX_STRICT_PLUGINS", raising=False)
    plugin_maker(tmp_path, "tunix-clash", "clash_plugin", """
        from tunix_core.hookspecs import hookimpl

        @hookimpl
        def tunix_register_trainers(registry):
            registry.register("clash-trainer", "clash_plugin:One")
    """)  # fmt: skip
    plugin_maker(tmp_path, "tunix-clash-too", "clash_too_plugin", """
        from tunix_core.hookspecs import hookimpl

        @hookimpl
        def tunix_register_trainers(registry):
            registry.register("clash-trainer", "clash_too_plugin:Two")
    """)  # fmt: skip
    code, _, err = run_main("run", "--trainer", "clash-trainer", "--dataset", "dev-reasoning-v2",
                            "--output-dir", str(tmp_path / "runs"))  # fmt: skip
    *warnings, error = err.splitlines()
    assert code == 1 and all(line.startswith("warning: ") for line in warnings)
    assert error.startswith("Error: trainer 'clash-trainer' is registered by tunix-clash")
    assert not (tmp_path / "runs").exists()


def test_disk_full_is_one_line(run_main, command):
    command(OSError(errno.ENOSPC, "No space left on device", "runs/x/predictions.jsonl"))
    assert run_main("boom") == (1, "", "Error: runs/x/predictions.jsonl: No space left on device\n")


def test_an_unexpected_error_is_one_line_and_its_traceback_is_saved(
    run_main, command, tmp_path: Path, monkeypatch
):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    command(ZeroDivisionError("division by zero"))
    code, out, err = run_main("boom")
    saved = sorted((tmp_path / "tunix" / "tracebacks").iterdir())
    assert (code, out, err) == (1, "", "Error: unexpected ZeroDivisionError: division by zero "
                                       f"(a bug in tunix or a plugin); traceback saved to {saved[0]}\n")  # fmt: skip
    assert "Traceback (most recent call last)" in saved[0].read_text()
    assert "raise exc" in saved[0].read_text()


def test_an_unsaveable_traceback_still_gives_one_line(run_main, command, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(blocker))
    command(ZeroDivisionError("division by zero"))
    code, _, err = run_main("boom")
    assert code == 1 and err.count("\n") == 1
    assert err.endswith("; the traceback could not be saved (File exists)\n")
