"""Without google-tunix (the default session), choosing the trainer stops before a run
directory exists with one line saying how to install it; an option google-tunix cannot
honour is refused with one line naming the field, installed or not."""

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tunix_core.errors import ConfigError
from tunix_google.requirements import INSTALL_HINT, refuse_unsupported

TRAINERS = ["google-tunix-sft", "google-tunix-grpo", "google-tunix-dpo"]


def run_args(trainer: str) -> list[str]:
    return ["run", "--trainer", trainer, "--dataset", "dev-reasoning-v2",
            "--model", "tiny-gemma3", "--weights", "random"]  # fmt: skip


def tunix(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tunix_core", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.mark.skipif(importlib.util.find_spec("tunix") is not None, reason="google-tunix installed")
@pytest.mark.parametrize("trainer", TRAINERS)
def test_without_google_tunix_the_trainer_says_how_to_install_it(tmp_path: Path, trainer: str):
    result = tunix(tmp_path, *run_args(trainer))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert trainer in lines[0] and INSTALL_HINT in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("trainer", "setting", "field"),
    [
        ("google-tunix-sft", "trainer.options.packing=true", "trainer.options.packing"),
        ("google-tunix-grpo", "trainer.options.dynamic_sampling=true",
         "trainer.options.dynamic_sampling"),
        ("google-tunix-grpo", "trainer.options.reward_normalization=batch",
         "trainer.options.reward_normalization"),
        ("google-tunix-grpo", "eval.during_training.every=1", "eval.during_training.every"),
        ("google-tunix-dpo", "trainer.options.remat=block", "trainer.options.remat"),
    ],
)  # fmt: skip
def test_an_option_google_tunix_lacks_is_refused_naming_the_field(
    tmp_path: Path, trainer: str, setting: str, field: str
):
    result = tunix(tmp_path, *run_args(trainer), "--set", setting)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{field}: not supported by {trainer}" in lines[0]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("module", "accepted", "refused"),
    [("sft", {"packing": False, "remat": "none"}, {"packing": True}),
     ("grpo", {"reward_normalization": "group", "dynamic_sampling": False},
      {"reward_normalization": "batch"})],
)  # fmt: skip
def test_an_option_set_to_what_google_tunix_does_anyway_is_accepted(
    module: str, accepted: dict[str, object], refused: dict[str, object]
):
    """One config can state the settings both engines share (packing off to compare the
    jax trainer with PeftTrainer on the same rows); any other value is still refused."""
    trainer = importlib.import_module(f"tunix_google.{module}")
    tables = (trainer.NAME, trainer.UNSUPPORTED_OPTIONS, trainer.GOOGLE_BEHAVIOUR)
    refuse_unsupported(accepted, *tables)
    with pytest.raises(ConfigError, match="not supported by"):
        refuse_unsupported(refused, *tables)
