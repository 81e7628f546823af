"""The plugin registers every built-in through the hooks, and ``tunix --help`` lists
``datasets`` without importing the command's module."""

from __future__ import annotations

import subprocess
import sys

from tunix_core.plugins import build_host
from tunix_datasets.providers import BUILTIN_ANSWER_CHECKS, BUILTIN_DATASETS
from tunix_datasets.transforms import BUILTIN_TRANSFORMS


def test_the_installed_plugin_provides_every_builtin() -> None:
    provides = build_host().provides()["tunix-datasets"]
    assert provides["datasets"] == sorted(name for name, _, _ in BUILTIN_DATASETS)
    assert provides["answer_checks"] == sorted(name for name, _, _ in BUILTIN_ANSWER_CHECKS)
    assert provides["transforms"] == sorted(name for name, _, _ in BUILTIN_TRANSFORMS)


PROBE = """
import sys
sys.argv = ["tunix", "--help"]
from tunix_core.cli import main
try:
    main()
except SystemExit:
    pass
print("LOADED=" + ",".join(m for m in sys.modules if m.startswith("tunix_datasets.")))
"""


def test_help_lists_datasets_without_importing_the_command() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "datasets" in result.stdout and "Datasets registered by installed plugins." in result.stdout
    loaded = result.stdout.rsplit("LOADED=", 1)[1].strip().split(",")
    assert "tunix_datasets.plugin" in loaded and "tunix_datasets.cli" not in loaded
