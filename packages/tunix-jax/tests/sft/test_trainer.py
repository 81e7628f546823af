"""The ``jax`` trainer end to end on the tiny model: outputs, resume after SIGKILL,
4 fake devices, divergence, time budget, validation."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tunix_core.config import structure_config
from tunix_core.errors import ConfigError, DataError, TunixError
from tunix_core.evidence import validate_file
from tunix_core.jsonio import read_jsonl
from tunix_core.plugins import PluginHost
from tunix_core.protocols import ModelSpec, RunContext
from tunix_jax.backend import JaxBackend

HERE = Path(__file__).parent
SCRIPT = HERE.parent / "train_script.py"
_spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
assert _spec is not None and _spec.loader is not None
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)

STEPS = 8
CONFIG = {
    "dataset": {"system_prompt": "Solve."},
    # float32 matmuls on every machine: the loss trajectories are compared to 1e-5.
    "model": {"preset": "tiny-gemma3", "weights": "random", "options": {"matmul_dtype": "float32"}},
    "training": {
        "steps": STEPS, "batch_size": 4, "max_seq_len": 64, "checkpoint_every": 2,
        "keep_checkpoints": 2, "learning_rate": 3e-3, "warmup_steps": 2,
        "lora": {"rank": 4, "alpha": 8.0},
    },
    "trainer": {"options": {"progress_bar": False, "packing": True}},
}  # fmt: skip


def _config(**training):
    data = json.loads(json.dumps(CONFIG))
    data["training"].update(training)
    return data


def _read_model_params(model_dir: Path) -> dict[str, np.ndarray]:
    from tunix_jax.models.gemma.config import get_config
    from tunix_jax.weights.orbax_io import read_params

    return {
        "/".join(map(str, k)): np.asarray(v.value)
        for k, v in read_params(model_dir / "params", get_config("tiny-gemma3")).items()
    }


def _subprocess_env(tmp_root: Path, devices: int = 1) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*sys.path, env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    # Processes of this module share compiled programs, with this process too when the
    # session set a cache for all its processes (nox does): the killed and resumed runs
    # then reuse the in-process reference run's programs instead of compiling them again.
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(tmp_root / "jax-cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    if devices > 1:
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _train_in_process(run_path: Path, config: dict, examples: int = 16):
    from tunix_jax.sft.trainer import JaxTrainer

    trainer = JaxTrainer()
    parsed = structure_config(config)
    context = RunContext(PluginHost())
    trainer.validate(parsed, context=context)
    run = train_script.open_run(run_path)
    messages: list[str] = []
    result = trainer.train(parsed, run, train_script.tiny_examples(examples),
                           backend=JaxBackend(), context=context.within(run, messages.append))  # fmt: skip
    return trainer, parsed, run, result, messages


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("trainer")


@pytest.fixture(scope="module")
def reference(tmp_root):
    """One uninterrupted run on one device, shared by the tests below."""
    return _train_in_process(tmp_root / "reference", CONFIG)


def test_a_run_writes_metrics_plot_checkpoints_and_model(reference):
    _, _, run, result, _ = reference
    assert result.steps == STEPS and not result.stopped_early
    export = result.export
    assert export.directory == run.model_dir and export.model_id == "tiny-gemma3@random"
    meta = json.loads((run.model_dir / "model_config.json").read_text())
    assert export.fingerprint == meta["fingerprint"] and meta["backend"] == "jax"
    assert validate_file(run.metrics_path) == []
    records = read_jsonl(run.metrics_path)
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert {"grad_norm", "tokens_per_second", "tokens", "learning_rate"} <= set(records[0])
    assert records[-1]["loss"] < records[0]["loss"] - 0.5
    assert records[-1]["tokens"] > records[0]["tokens"] > 0
    assert (run.path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(int(p.name) for p in run.checkpoints_dir.iterdir() if p.name.isdigit()) == [6, 8]
    meta = json.loads((run.model_dir / "model_config.json").read_text())
    assert meta["preset"] == "tiny-gemma3"
    assert (run.model_dir / "tokenizer.model").is_file()
    # LoRA is merged: the export holds the plain Tunix parameter names only.
    names = _read_model_params(run.model_dir)
    assert "layers/0/attn/q_einsum/w" in names and not any("lora" in n for n in names)


def test_the_backend_loads_the_exported_model(reference):
    _, config, run, _, _ = reference
    trained = JaxBackend().load_export(run.model_dir, ModelSpec.from_config(config), progress=print)
    assert JaxBackend().export_problems(run.model_dir) == []
    completions = trained.generate(
        ["<start_of_turn>user\nWhat is 1 + 1?<end_of_turn>\n<start_of_turn>model\n"],
        max_new_tokens=4,
    )
    assert len(completions) == 1 and isinstance(completions[0], str)


def test_resume_after_sigkill_ends_with_the_same_parameters(reference, tmp_root):
    run_path = tmp_root / "killed"
    env = _subprocess_env(tmp_root)
    spec = json.dumps({"config": CONFIG, "examples": 16, "batch_delay": 0.4})
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(run_path), spec], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    checkpoint = run_path / "checkpoints" / "2"
    deadline = time.monotonic() + 240
    while not checkpoint.is_dir() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    output = process.communicate()[0].decode()
    assert process.returncode == -signal.SIGKILL, output
    steps = sorted(int(p.name) for p in (run_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and max(steps) < STEPS, "the run finished before it was killed"

    # The resume reads only what the killed process left on disk, so it runs in this
    # process: no second start-up, and the reference run's step program is reused.
    _, _, _, result, messages = _train_in_process(run_path, CONFIG)
    assert result.steps == STEPS
    assert any(m.startswith("[train] resumed from the checkpoint of step") for m in messages)

    expected = _read_model_params(reference[2].model_dir)
    actual = _read_model_params(run_path / "model")
    assert expected.keys() == actual.keys()
    for name, value in expected.items():
        np.testing.assert_allclose(actual[name], value, atol=1e-6, rtol=0, err_msg=name)
    records = read_jsonl(run_path / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))


def _damage_arrays(checkpoint: Path) -> None:
    """Cut every array data file of ``checkpoint`` (orbax's OCDBT ``d/`` folders) in half."""
    for data in checkpoint.rglob("d/*"):
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def _copy_of_reference(reference, tmp_root: Path, name: str) -> Path:
    run_path = tmp_root / name
    shutil.copytree(reference[2].path, run_path)
    shutil.rmtree(run_path / "model")
    return run_path


def test_resume_falls_back_past_a_damaged_latest_checkpoint(reference, tmp_root):
    run_path = _copy_of_reference(reference, tmp_root, "damaged-latest")
    _damage_arrays(run_path / "checkpoints" / str(STEPS))
    _, _, run, result, messages = _train_in_process(run_path, CONFIG)
    skipped = [m for m in messages if m.startswith("[train] skipped checkpoint")]
    assert len(skipped) == 1 and f"checkpoints/{STEPS}: ValueError: " in skipped[0]
    assert "[train] resumed from the checkpoint of step 6" in messages
    assert result.steps == STEPS
    assert result.export.fingerprint == reference[3].export.fingerprint
    assert [r["step"] for r in read_jsonl(run.metrics_path)] == list(range(1, STEPS + 1))


def test_resume_with_no_good_checkpoint_says_how_to_start_over(reference, tmp_root):
    run_path = _copy_of_reference(reference, tmp_root, "all-damaged")
    for checkpoint in (run_path / "checkpoints").iterdir():
        meta = checkpoint / "meta" / "metadata"
        meta.write_text(meta.read_text()[:10])
    with pytest.raises(TunixError) as caught:
        _train_in_process(run_path, CONFIG)
    message = str(caught.value)
    assert message.startswith(f"no usable checkpoint in {run_path / 'checkpoints'} (")
    assert message.endswith(f"delete that folder and run `tunix run --resume {run_path}`")
    assert sorted(p.name for p in (run_path / "checkpoints").iterdir()) == ["6", "8"]


def test_four_devices_follow_the_one_device_loss_trajectory(reference, tmp_root):
    config = _config()
    config["model"]["options"].update(mesh_data=2, mesh_fsdp=2)
    run_path = tmp_root / "four-devices"
    spec = json.dumps({"config": config, "examples": 16})
    done = subprocess.run([sys.executable, str(SCRIPT), str(run_path), spec],
                          env=_subprocess_env(tmp_root, devices=4),
                          capture_output=True, text=True, timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    one = [r["loss"] for r in read_jsonl(reference[2].metrics_path)]
    four = [r["loss"] for r in read_jsonl(run_path / "metrics.jsonl")]
    assert len(four) == STEPS
    np.testing.assert_allclose(four, one, atol=1e-5, rtol=0)


def test_a_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_root, monkeypatch):
    from tunix_jax.training import loop

    drawn = []
    original = loop._stacked_batch

    def poisoned(stream, accum):
        batch = original(stream, accum)
        drawn.append(1)
        if len(drawn) == 3:  # the batch of step 3
            batch["weights"] = batch["weights"] * np.float32("nan")
        return batch

    monkeypatch.setattr(loop, "_stacked_batch", poisoned)
    run_path = tmp_root / "diverged"
    with pytest.raises(loop.TrainingDivergedError, match=r"step 3.*last good checkpoint is kept"):
        _train_in_process(run_path, _config(checkpoint_every=2))
    steps = sorted(int(p.name) for p in (run_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [2]
    assert [r["step"] for r in read_jsonl(run_path / "metrics.jsonl")] == [1, 2]


_real_time, _real_monotonic = time.time, time.monotonic


class _FakeClock:
    """``time`` for the loop whose wall clock jumps past the budget after some batches."""

    def __init__(self, jump_after: int) -> None:
        self.batches, self.jump_after = 0, jump_after

    def time(self) -> float:
        return _real_time() + (10_000.0 if self.batches >= self.jump_after else 0.0)

    monotonic = staticmethod(_real_monotonic)


def test_the_time_budget_stops_cleanly_with_a_checkpoint_and_a_model(tmp_root, monkeypatch):
    from tunix_jax.training import loop

    clock = _FakeClock(jump_after=3)
    original = loop._stacked_batch

    def counted(stream, accum):
        clock.batches += 1
        return original(stream, accum)

    monkeypatch.setattr(loop, "_stacked_batch", counted)
    monkeypatch.setattr(loop, "time", clock)
    run_path = tmp_root / "budget"
    config = _config()
    config["training"]["time_budget"] = "2h"
    _, _, run, result, messages = _train_in_process(run_path, config)
    assert result.stopped_early and result.steps == 3 and "time budget" in result.reason
    assert any("time budget" in m for m in messages)
    assert (run.checkpoints_dir / "3").is_dir() and (run.model_dir / "params").is_dir()


def test_an_empty_train_split_is_a_clear_error(tmp_root):
    from tunix_jax.sft.trainer import JaxTrainer

    run = train_script.open_run(tmp_root / "empty")
    with pytest.raises(DataError, match="train split has no examples"):
        JaxTrainer().train(structure_config(CONFIG), run, [], backend=JaxBackend(),
                           context=RunContext(PluginHost(), run, print))  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": {"backend": "torch"}}, "model.backend"),
        ({"training": {"max_seq_len": 4096}}, "training.max_seq_len"),
        (
            {"trainer": {"options": {"lora_targets": ["q_einsum", "o_proj"]}}},
            "trainer.options.lora_targets",
        ),
        ({"model": {"options": {"mesh_data": 3}}}, "model.options.mesh_data"),
        ({"trainer": {"options": {"remat": "all"}}}, "trainer.options.remat"),
        ({"trainer": {"options": {"reserve_fraction": 1.5}}}, "trainer.options.reserve_fraction"),
        ({"trainer": {"options": {"deadline": "tomorrow"}}}, "trainer.options.deadline"),
    ],
)
def test_validate_names_the_config_field(change, field):
    from tunix_jax.sft.trainer import JaxTrainer

    data = json.loads(json.dumps(CONFIG))
    for section, values in change.items():
        data[section] = {**data[section], **values}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        JaxTrainer().validate(structure_config(data), context=RunContext(PluginHost()))
