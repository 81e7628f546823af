"""Without google-tunix (the default session), choosing the trainer stops before a run
directory exists with one line saying how to install it; an option google-tunix cannot
honour is refused with one line naming the field, installed or not."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tunix_google.requirements import INSTALL_HINT

RUN = [
    "run", "--trainer", "google-tunix-sft", "--dataset", "dev-reasoning-v2",
    "--model", "tiny-gemma3", "--weights", "random",
]  # fmt: skip


def tunix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunix_core", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.skipif(importlib.util.find_spec("tunix") is not None, reason="google-tunix installed")
def test_without_google_tunix_the_trainer_says_how_to_install_it(tmp_path: Path):
    result = tunix(tmp_path, *RUN)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "google-tunix-sft" in lines[0] and INSTALL_HINT in lines[0]
    assert not (tmp_path / "runs").exists()


def test_an_option_google_tunix_lacks_is_refused_naming_the_field(tmp_path: Path):
    result = tunix(tmp_path, *RUN, "--set", "trainer.options.packing=false")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "trainer.options.packing: not supported by google-tunix-sft" in lines[0]
    assert not (tmp_path / "runs").exists()
