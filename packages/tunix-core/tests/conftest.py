"""Shared fixtures of the core tests.

``make_plugin`` builds real installed-looking plugins: a module plus a ``*.dist-info`` folder with
``METADATA`` and ``entry_points.txt``, on a directory that tests put on ``sys.path``."""

from __future__ import annotations

import functools
import sys
import textwrap
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest


def make_plugin(root: Path, distribution: str, module: str, source: str, version: str = "1.0") -> None:
    """Write ``module.py`` and ``<distribution>-<version>.dist-info`` under ``root``;
    the entry point (group ``tunix``) is named after the module."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(f"[tunix]\n{module} = {module}\n")
    (info / "RECORD").write_text("")


@pytest.fixture(scope="session")
def datasets_plugin() -> ModuleType:
    """The installed tunix-datasets plugin (the built-in datasets the run tests train on),
    loaded from its entry point as the host loads it: core's tests never import it."""
    (entry_point,) = metadata.entry_points(group="tunix", name="datasets")
    plugin: ModuleType = entry_point.load()
    return plugin


@pytest.fixture
def plugin_maker() -> Callable[..., None]:
    return make_plugin


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Installs plugins into a fresh folder on sys.path: ``site(dist, module, source)``;
    the plugin switches of the environment are cleared."""
    monkeypatch.syspath_prepend(str(tmp_path))
    for variable in ("TUNIX_STRICT_PLUGINS", "TUNIX_PLUGINS_ALLOW", "TUNIX_PLUGINS_BLOCK"):
        monkeypatch.delenv(variable, raising=False)
    return functools.partial(make_plugin, tmp_path)


@pytest.fixture
def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
             ) -> Callable[..., tuple[int, str, str]]:  # fmt: skip
    """``tunix_core.cli.main()`` as ``tunix ARGS`` with the plugins on sys.path:
    ``(exit code, stdout, stderr)``."""
    from tunix_core import cli
    from tunix_core.plugins import get_host

    monkeypatch.setenv("TUNIX_NO_HUGEPAGES", "1")

    def run(*args: str) -> tuple[int, str, str]:
        get_host.cache_clear()
        monkeypatch.setattr(sys, "argv", ["tunix", *args])
        try:
            with pytest.raises(SystemExit) as exited:
                cli.main()
        finally:
            get_host.cache_clear()
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    return run
