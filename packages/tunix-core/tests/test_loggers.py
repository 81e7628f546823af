"""The built-in training loggers, driven through the core plugin's hooks as ``tunix run``
calls them: TensorBoard scalars read back with TensorBoard's own event reader, an
offline Weights & Biases run read back from its run file, and loggers that fail without
failing the run."""

from __future__ import annotations

import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import tunix_core.builtin
from tunix_core.config import structure_config, unstructure_config
from tunix_core.errors import ConfigError
from tunix_core.evaluation import score_predictions
from tunix_core.hookspecs import hookimpl
from tunix_core.loggers.tensorboard import TensorBoardLogger
from tunix_core.loggers.wandb import default_mode
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import AnswerOptions, AnswerVerdict, Prediction, RunContext
from tunix_core.rundir import RunDirectory

if TYPE_CHECKING:  # the heavy and compat sessions collect this file without W&B installed
    from wandb.proto import wandb_internal_pb2

TRAIN_METRICS = ("loss", "grad_norm", "learning_rate", "tokens", "tokens_per_second",
                 "elapsed_seconds")  # fmt: skip


def step_metrics(step: int) -> dict[str, float]:
    """What the jax trainer hands ``tunix_train_step_end`` for step ``step``."""
    return {"loss": 2.0 / step, "grad_norm": 1.0 + step, "learning_rate": 1e-4 * step,
            "tokens": 100.0 * step, "tokens_per_second": 50.0, "elapsed_seconds": 0.5 * step}  # fmt: skip


def exact(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    return AnswerVerdict(answer.strip() == expected, "exact")


@hookimpl
def _register_checks(registry):
    registry.register("auto", f"{__name__}:exact")


def core_host() -> PluginHost:
    host = PluginHost()
    host.add_plugin(tunix_core.builtin, "core", "tunix-core")
    host.add_plugin(plugin_module("checks", tunix_register_answer_checks=_register_checks),
                    "checks", "tunix-test-checks")  # fmt: skip
    host.fill_registries()
    return host


def write_summary(host: PluginHost, out_dir: Path, answers: list[str]) -> None:
    """An eval summary of two items whose expected answers are "4" and "9"."""
    predictions = [
        Prediction(f"q{i}", "prompt", f"<reasoning>r</reasoning><answer>{answer}</answer>", expected, {})
        for i, (answer, expected) in enumerate(zip(answers, ["4", "9"], strict=True))
    ]
    score_predictions(predictions, [], label="unit", out_dir=out_dir, context=RunContext(host))


def new_run(tmp_path: Path, run_id: str = "unit-run") -> RunDirectory:
    return RunDirectory.create(tmp_path, run_id, model_id="tiny-gemma3@random", dataset="unit",
                               trainer="jax", config_path=None, command=["pytest"])  # fmt: skip


def start(host: PluginHost, run: RunDirectory, logging: dict | None = None) -> None:
    config = structure_config({"logging": logging or {}})
    host.manager.hook.tunix_run_started(run=run, config=unstructure_config(config))


def train(host: PluginHost, run: RunDirectory, steps: range) -> None:
    for step in steps:
        host.manager.hook.tunix_train_step_end(step=step, metrics=step_metrics(step), run=run)


def simulate_run(host: PluginHost, run: RunDirectory, logging: dict | None = None) -> None:
    """The hook calls of a run: baseline (0 of 2 right), three steps, final (2 of 2)."""
    hook = host.manager.hook
    start(host, run, logging)
    write_summary(host, run.baseline_dir, ["5", "no"])
    hook.tunix_stage_finished(run=run, stage="baseline", seconds=1.0)
    train(host, run, range(1, 4))
    run.finish_stage("train", 1.0, detail={"steps": 3})
    hook.tunix_stage_finished(run=run, stage="train", seconds=1.0)
    write_summary(host, run.path, ["4", "9"])
    hook.tunix_stage_finished(run=run, stage="evaluate", seconds=1.0)
    hook.tunix_run_finished(run=run, status="succeeded", error=None)


def tensorboard_scalars(directory: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag under ``directory`` as (step, value) pairs, as TensorBoard shows them."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_a_run_writes_every_step_and_both_evaluations_to_tensorboard(tmp_path):
    host = core_host()
    run = new_run(tmp_path)
    simulate_run(host, run)
    scalars = tensorboard_scalars(run.tensorboard_dir)
    assert run.tensorboard_dir == run.path / "tb"
    assert set(scalars) == {
        *(f"train/{name}" for name in TRAIN_METRICS),
        "baseline/answer_accuracy", "baseline/format_compliance",
        "final/answer_accuracy", "final/format_compliance",
    }  # fmt: skip
    for name in TRAIN_METRICS:
        logged = scalars[f"train/{name}"]
        assert [step for step, _ in logged] == [1, 2, 3]
        assert [value for _, value in logged] == pytest.approx(
            [step_metrics(step)[name] for step in (1, 2, 3)], rel=1e-6
        )
    assert scalars["baseline/answer_accuracy"] == [(0, 0.0)]
    assert scalars["baseline/format_compliance"] == [(0, 1.0)]
    assert scalars["final/answer_accuracy"] == [(3, 1.0)]


def test_each_step_is_on_disk_while_the_run_goes_on(tmp_path):
    host = core_host()
    run = new_run(tmp_path)
    start(host, run)
    train(host, run, range(1, 3))
    assert [step for step, _ in tensorboard_scalars(run.tensorboard_dir)["train/loss"]] == [1, 2]
    host.manager.hook.tunix_run_finished(run=run, status="succeeded", error=None)


def test_an_evaluation_during_training_is_logged_under_its_own_name(tmp_path):
    host = core_host()
    run = new_run(tmp_path)
    start(host, run)
    host.manager.hook.tunix_train_step_end(step=2, run=run, metrics={
        **step_metrics(2), "eval/ood_accuracy": 0.25, "eval/ood_format": 0.5})  # fmt: skip
    scalars = tensorboard_scalars(run.tensorboard_dir)
    assert scalars["eval/ood_accuracy"] == [(2, 0.25)] and scalars["eval/ood_format"] == [(2, 0.5)]
    assert "train/loss" in scalars and not any(tag.startswith("train/eval") for tag in scalars)
    host.manager.hook.tunix_run_finished(run=run, status="succeeded", error=None)


def test_a_resumed_run_continues_the_same_curves(tmp_path):
    host = core_host()
    run = new_run(tmp_path)
    start(host, run)
    train(host, run, range(1, 4))  # steps 3 is lost: its checkpoint was never written
    host.manager.hook.tunix_run_finished(run=run, status="interrupted", error=None)
    start(host, run)
    host.manager.hook.tunix_train_step_end(step=3, metrics={"loss": 0.125}, run=run)
    host.manager.hook.tunix_train_step_end(step=4, metrics={"loss": 0.0625}, run=run)
    host.manager.hook.tunix_run_finished(run=run, status="succeeded", error=None)
    assert len(list(run.tensorboard_dir.iterdir())) == 2  # one event file per attempt
    assert tensorboard_scalars(run.tensorboard_dir)["train/loss"] == [
        (1, 2.0), (2, 1.0), (3, 0.125), (4, 0.0625),
    ]  # fmt: skip


def test_tensorboard_can_be_switched_off(tmp_path):
    host = core_host()
    run = new_run(tmp_path)
    simulate_run(host, run, {"tensorboard": False})
    assert not run.tensorboard_dir.exists()


def test_without_tensorboardx_a_run_says_once_how_to_install_it(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if not installed
    host = core_host()
    run = new_run(tmp_path)
    simulate_run(host, run)
    assert not run.tensorboard_dir.exists()
    note = ("TensorBoard logging is off: tensorboardX is not installed "
            "(pip install 'tunix-core[tensorboard]')")  # fmt: skip
    assert capsys.readouterr().err.count(note) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "tunix.loggers"] == [note]


def test_steps_of_a_trainer_driven_outside_a_run_are_not_logged(tmp_path):
    host = core_host()
    run = new_run(tmp_path)
    train(host, run, range(1, 3))  # no tunix_run_started: a trainer test, a notebook
    assert not run.tensorboard_dir.exists()


def test_a_failing_logger_is_reported_once_and_the_run_goes_on(tmp_path, monkeypatch, capsys, caplog):
    calls = []

    def disk_full(self, scalars, step):
        calls.append(step)
        raise OSError("No space left on device")

    monkeypatch.setattr(TensorBoardLogger, "log", disk_full)
    host = core_host()
    run = new_run(tmp_path)
    simulate_run(host, run)
    assert calls == [0]  # dropped after the baseline's scalars failed
    warning = "tensorboard logging is off for the rest of this run: OSError: No space left on device"
    assert capsys.readouterr().err.count(warning) == 1
    assert [r.getMessage() for r in caplog.records if r.name == "tunix.loggers"] == [warning]


def test_the_logging_section_defaults_and_refuses_unknown_keys():
    logging = structure_config({}).logging
    assert (logging.tensorboard, logging.wandb, logging.wandb_project) == (True, False, "tunix")
    with pytest.raises(ConfigError, match=r"logging\.wandb_projekt: unknown key"):
        structure_config({"logging": {"wandb_projekt": "x"}})


# ---- Weights & Biases -----------------------------------------------------------------


@pytest.fixture
def wandb_home(tmp_path, monkeypatch):
    """No W&B login and no W&B setting from the environment; W&B's own files in tmp_path."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-dir"))
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return tmp_path


def wandb_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """The records of a ``run-<id>.wandb`` file: a 7-byte header, then LevelDB-log blocks of
    32 KiB holding chunks (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    position, pending, records = 7, b"", []
    while position + 7 <= len(data):
        left_in_block = 32768 - position % 32768
        if left_in_block < 7:  # too small for a chunk header: zero padding
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_history(records: list[wandb_internal_pb2.Record]) -> dict[str, list[tuple[int, float]]]:
    """Every logged key (W&B's own ``_``-keys left out) as (step, value) pairs."""
    import json

    history: dict[str, list[tuple[int, float]]] = {}
    for record in records:
        if record.WhichOneof("record_type") != "history":
            continue
        for item in record.history.item:
            key = "/".join(item.nested_key) or item.key
            if not key.startswith("_"):
                history.setdefault(key, []).append((record.history.step.num, json.loads(item.value_json)))
    return history


def test_wandb_without_a_login_writes_an_offline_run(wandb_home):
    import wandb

    assert default_mode() == "offline"
    host = core_host()
    run = new_run(wandb_home / "runs")
    simulate_run(host, run, {"tensorboard": False, "wandb": True, "wandb_project": "unit"})
    wandb.teardown()  # W&B's service process writes the run file; this waits for it, as an exit does
    [run_file] = (wandb_home / "wandb-dir").glob("wandb/offline-run-*/run-unit-run.wandb")
    # W&B's folder has symbolic links, which the run directory's validation refuses.
    assert not any(path.is_symlink() for path in run.path.rglob("*"))
    records = wandb_records(run_file)
    [started] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert (started.run_id, started.display_name, started.project) == ("unit-run", "unit-run", "unit")
    history = wandb_history(records)
    assert history["train/loss"] == [(1, 2.0), (2, 1.0), (3, pytest.approx(2 / 3))]
    assert history["train/tokens"] == [(1, 100.0), (2, 200.0), (3, 300.0)]
    assert history["baseline/answer_accuracy"] == [(0, 0.0)]
    assert history["final/answer_accuracy"] == [(3, 1.0)]
    [exit_record] = [r.exit for r in records if r.WhichOneof("record_type") == "exit"]
    assert exit_record.exit_code == 0


def test_wandb_goes_online_only_for_a_logged_in_user_or_when_told(wandb_home, monkeypatch):
    (wandb_home / "netrc").write_text("machine api.wandb.ai login user password k\n")
    assert default_mode() == "online"
    (wandb_home / "netrc").write_text("machine example.org login user password k\n")
    assert default_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    assert default_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert default_mode() is None  # W&B reads WANDB_MODE itself


def test_a_wandb_failure_does_not_fail_the_run(wandb_home, monkeypatch, capsys):
    import wandb

    def unreachable(**kwargs):
        raise ConnectionError("api.wandb.ai unreachable")

    monkeypatch.setattr(wandb, "init", unreachable)
    host = core_host()
    run = new_run(wandb_home / "runs")
    simulate_run(host, run, {"wandb": True})
    assert capsys.readouterr().err.count("wandb logging is off") == 1
    assert "train/loss" in tensorboard_scalars(run.tensorboard_dir)  # the other logger goes on


def test_wandb_enabled_but_not_installed_names_the_extra(wandb_home, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what an absent package looks like
    host = core_host()
    run = new_run(wandb_home / "runs")
    simulate_run(host, run, {"wandb": True})
    err = capsys.readouterr().err
    assert "logging.wandb is true but wandb is not installed: pip install 'tunix-core[wandb]'" in err
