"""Run against a non-editable install of every package plus the example plugin (nox
session ``integration``): what a user gets from ``pip install``."""

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE_TESTS = Path(__file__).resolve().parents[2] / "examples" / "tunix-plugin-example" / "tests"


def tunix(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tunix_core", *args], capture_output=True, text=True, timeout=120
    )


def test_plugins_lists_every_package_and_the_example():
    result = tunix("plugins", "--json")
    assert result.returncode == 0, result.stderr
    plugins = {p["distribution"]: p for p in json.loads(result.stdout)["plugins"]}
    expected = {"tunix-core", "tunix-datasets", "tunix-jax", "tunix-eval", "tunix-package",
                "tunix-plugin-example"}  # fmt: skip
    assert expected <= set(plugins)
    assert all(plugins[d]["status"] == "loaded" for d in expected), plugins
    assert plugins["tunix-plugin-example"]["provides"] == {
        "datasets": ["digit-sum"],
        "evaluators": ["answer-brevity"],
        "answer_checks": ["integer"],
        "rewards": ["digit_sum_bonus"],
    }


def test_example_dataset_is_usable_from_the_cli():
    listed = tunix("datasets", "list")
    assert "digit-sum" in listed.stdout and "[tunix-plugin-example]" in listed.stdout
    shown = tunix("datasets", "show", "digit-sum", "--split", "eval", "--limit", "2")
    assert shown.returncode == 0, shown.stderr
    assert "What is the sum of the digits of" in shown.stdout


def test_example_plugin_own_tests_pass_against_the_installed_packages():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(EXAMPLE_TESTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-2000:]
