"""runner.execute walks the stage table: every stage in order, its outputs on disk, the
lifecycle hooks called around it, and --resume/--stop-after read from the same table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pytest
import yaml

from tunix_core import api, baseline_cache, builtin, runner
from tunix_core.config import load_run_config
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import AnswerVerdict, ModelExport, ModelSpec, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_core.stages import STAGES
from tunix_core.types import STAGE_NAMES

REPO = Path(__file__).resolve().parents[3]
ANSWER = "<reasoning>r</reasoning><answer>42</answer>"


class EchoModel:
    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        return [ANSWER for _ in prompts]

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        return [0.0 for _ in prompts]


class EchoBackend:
    """Records what it loads; every model answers 42. Like every backend it keeps what it
    loaded, so two instances of it would load the base model twice."""

    name = "echo"
    loads: ClassVar[list[str]] = []

    def __init__(self) -> None:
        self.models: dict[str, EchoModel] = {}

    def validate(self, spec: ModelSpec) -> None:
        pass

    def load(self, spec: ModelSpec, *, progress: Any) -> EchoModel:
        if spec.key() not in self.models:
            EchoBackend.loads.append(f"base {spec.preset}")
            self.models[spec.key()] = EchoModel(spec)
        return self.models[spec.key()]

    def load_export(self, directory: Path, spec: ModelSpec, *, progress: Any) -> EchoModel:
        EchoBackend.loads.append(f"export {directory.name}")
        return EchoModel(spec)

    def export(self, model: Any, directory: Path, **extras: Any) -> ModelExport:
        directory.mkdir(exist_ok=True)
        (directory / "model_config.json").write_text("{}")
        return ModelExport(directory, "fake@trained", "sha256:fake")

    def verify(self, directory: Path, *, progress: Any) -> dict[str, Any]:
        return {"ok": True}

    def export_problems(self, directory: Path) -> list[str]:
        return []


class ChoosingBackend(EchoBackend):
    """An echo backend whose ``model.options.speed: auto`` (its default) this machine
    settles to ``fast``, as the jax backend settles ``matmul_dtype: auto``."""

    name = "choosing"
    resolved: ClassVar[list[dict[str, Any]]] = []

    def resolve_options(self, options: Any) -> dict[str, dict[str, str]]:
        ChoosingBackend.resolved.append(dict(options))
        if options.get("speed", "auto") != "auto":
            return {}
        return {"speed": {"value": "fast", "reason": "auto: this machine is fast"}}


class FakeTrainer:
    """Writes what a trainer must leave behind and records what it was asked to train
    (steps, the model it starts from, where it writes); fails when ``fail`` is set or
    when asked for ``fail_at_steps`` steps."""

    fail = False
    fail_at_steps: int | None = None
    seen: ClassVar[list[tuple[int, str | None, Path]]] = []

    def validate(self, config: Any, *, context: Any) -> None:
        pass

    def train(self, config: Any, run: RunDirectory, train_examples: Any, *, backend: Any,
              context: Any) -> TrainResult:  # fmt: skip
        if FakeTrainer.fail or config.training.steps == FakeTrainer.fail_at_steps:
            raise RuntimeError("out of memory")
        FakeTrainer.seen.append((config.training.steps, config.model.init_from, run.path))
        run.metrics_path.write_text('{"step": 1}\n')
        base = backend.load(ModelSpec.from_config(config), progress=print)
        return TrainResult(steps=1, export=backend.export(base, run.model_dir))


class PickyTrainer(FakeTrainer):
    """Refuses ``options.depth`` above ``training.max_seq_len``, naming both as a trainer
    names the fields of the one config it is given; ``options.fail_with_data`` makes its
    training fail as a trainer whose prompts are all too long does."""

    def validate(self, config: Any, *, context: Any) -> None:
        from tunix_core.errors import ConfigError

        depth, most = config.trainer.options.get("depth", 1), config.training.max_seq_len
        if depth > most:
            raise ConfigError(f"trainer.options.depth: {depth} exceeds training.max_seq_len={most}")

    def train(self, config: Any, run: RunDirectory, train_examples: Any, *, backend: Any,
              context: Any) -> TrainResult:  # fmt: skip
        from tunix_core.errors import DataError

        if config.trainer.options.get("fail_with_data"):
            raise DataError("every prompt is longer than training.max_seq_len - "
                            "trainer.options.depth tokens; raise training.max_seq_len")  # fmt: skip
        return super().train(config, run, train_examples, backend=backend, context=context)


def same_text(answer: str, expected: str, options: Any) -> AnswerVerdict:
    return AnswerVerdict(answer.strip() == expected.strip(), "same-text")


def number_only(answer: str, expected: str, options: Any) -> AnswerVerdict:
    if not expected.isdigit():
        raise ValueError(f"the expected answer must be one number, got {expected!r}")
    return AnswerVerdict(answer.strip() == expected, "number")


@hookimpl
def _register_trainers(registry: Any) -> None:
    registry.register("fake", f"{__name__}:FakeTrainer")
    registry.register("picky", f"{__name__}:PickyTrainer")


@hookimpl
def _register_backends(registry: Any) -> None:
    registry.register("echo", f"{__name__}:EchoBackend")
    registry.register("choosing", f"{__name__}:ChoosingBackend")


@hookimpl
def _register_answer_checks(registry: Any) -> None:
    for name in ("auto", "exact", "list"):  # what dev-reasoning-v2 items name
        registry.register(name, f"{__name__}:same_text")
    registry.register("number", f"{__name__}:number_only")


hook_calls: list[tuple[Any, ...]] = []


@hookimpl
def _run_started(run: RunDirectory, config: dict[str, Any]) -> None:
    hook_calls.append(("run_started", config["trainer"]["name"]))


@hookimpl
def _stage_finished(run: RunDirectory, stage: str, seconds: float) -> None:
    hook_calls.append(("stage_finished", stage, run.stage_status(stage)))


@hookimpl
def _run_finished(run: RunDirectory, status: str, error: BaseException | None) -> None:
    hook_calls.append(("run_finished", status, type(error).__name__ if error else None))


@pytest.fixture
def host(datasets_plugin: ModuleType) -> PluginHost:
    hook_calls.clear()
    FakeTrainer.fail = False
    FakeTrainer.fail_at_steps = None
    FakeTrainer.seen.clear()
    EchoBackend.loads.clear()
    ChoosingBackend.resolved.clear()
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(datasets_plugin, "datasets", "tunix-datasets")
    host.add_plugin(
        plugin_module(
            "runner-test",
            tunix_register_trainers=_register_trainers,
            tunix_register_backends=_register_backends,
            tunix_register_answer_checks=_register_answer_checks,
            tunix_run_started=_run_started,
            tunix_stage_finished=_stage_finished,
            tunix_run_finished=_run_finished,
        ),
        "runner-test",
        "tunix-runner-test",
    )
    host.fill_registries()
    return host


def config(output_dir: Path) -> dict[str, Any]:
    return {
        "run": {"name": "walk", "output_dir": str(output_dir)},
        "dataset": {"name": "dev-reasoning-v2", "train_limit": 3, "eval_limit": 2},
        "trainer": {"name": "fake"},
        "model": {"backend": "echo"},
        "eval": {"evaluators": []},
        "package": {"enabled": False},
    }


def test_a_run_walks_the_table_and_leaves_each_stage_s_outputs(host: PluginHost, tmp_path: Path):
    path = api.run(config(tmp_path), host=host, echo=lambda _: None)
    run = RunDirectory.open(path)
    assert set(run.manifest["stages"]) == set(STAGE_NAMES)
    assert [run.stage_status(name) for name in STAGE_NAMES] == [
        "done", "done", "done", "done", "skipped",
    ]  # fmt: skip
    for stage in STAGES:
        assert all(output.is_file() for output in stage.outputs(run)), stage.name
    assert run.manifest["model_id"] == "fake@trained"
    finished = [("stage_finished", name, run.stage_status(name)) for name in STAGE_NAMES]
    assert hook_calls == [("run_started", "fake"), *finished, ("run_finished", "succeeded", None)]


def test_a_run_loads_its_base_model_once_and_evaluates_the_export(
    host: PluginHost, tmp_path: Path
):
    api.run(config(tmp_path), host=host, echo=lambda _: None)
    # The baseline and the trainer share one load; the final evaluation reads the export.
    assert EchoBackend.loads == ["base gemma3-270m", "export model"]


def test_an_unknown_backend_is_refused_before_a_run_directory_exists(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model.backend: Unknown model backend 'nope'.*echo"):
        api.run({**config(tmp_path), "model": {"backend": "nope"}}, host=host, echo=print)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_options_left_to_the_machine_are_settled_in_the_config_and_recorded_with_why(
    host: PluginHost, tmp_path: Path
):
    lines: list[str] = []
    settings = {**config(tmp_path), "model": {"backend": "choosing", "options": {"keep": 1}}}
    path = api.run(settings, stop_after="baseline", host=host, echo=lines.append)
    run = RunDirectory.open(path)
    assert run.manifest["model_choices"] == {
        "speed": {"value": "fast", "reason": "auto: this machine is fast"}
    }
    line = "[run] model.options.speed: fast (auto: this machine is fast)"
    assert line in lines
    assert line in run.log_path.read_text()
    # What is keyed on the model spec sees the choice, not the word: the spec the baseline
    # loaded and the saved config a --resume reads.
    saved = yaml.safe_load(run.config_path.read_text())
    assert saved["model"]["options"] == {"keep": 1, "speed": "fast"}
    plan = runner.plan_run(host, load_run_config(run.config_path))
    key = baseline_cache.baseline_key(plan.config, plan.context, plan.eval_examples, split="eval")
    assert key["model"]["spec"]["options"] == {"keep": 1, "speed": "fast"}

    lines.clear()
    api.run(resume=path, host=host, echo=lines.append)
    assert line in lines  # the resumed run says which it computes with, chosen at the start
    assert ChoosingBackend.resolved[-1] == {"keep": 1, "speed": "fast"}
    assert RunDirectory.open(path).manifest["model_choices"] == run.manifest["model_choices"]


def test_a_backend_that_settles_nothing_records_no_choices(host: PluginHost, tmp_path: Path):
    settings = {**config(tmp_path), "model": {"backend": "choosing", "options": {"speed": "slow"}}}
    path = api.run(settings, stop_after="dataset", host=host, echo=lambda _: None)
    run = RunDirectory.open(path)
    assert run.manifest["model_choices"] == {}
    assert yaml.safe_load(run.config_path.read_text())["model"]["options"] == {"speed": "slow"}


def test_stop_after_then_resume_skips_what_is_done(host: PluginHost, tmp_path: Path):
    lines: list[str] = []
    path = api.run(config(tmp_path), stop_after="baseline", host=host, echo=lines.append)
    assert RunDirectory.open(path).stage_status("train") == "pending"
    assert ("run_finished", "interrupted", None) in hook_calls

    hook_calls.clear()
    api.run(resume=path, host=host, echo=lines.append)
    assert "[baseline] already done, skipping" in lines
    assert [call[1] for call in hook_calls if call[0] == "stage_finished"] == ["train", "evaluate", "package"]


def test_stop_after_a_stage_that_is_already_done_runs_nothing_past_it(
    host: PluginHost, tmp_path: Path
):
    path = api.run(config(tmp_path), stop_after="baseline", host=host, echo=lambda _: None)
    hook_calls.clear()
    api.run(resume=path, stop_after="dataset", host=host, echo=lambda _: None)
    assert [call for call in hook_calls if call[0] == "stage_finished"] == []
    assert RunDirectory.open(path).stage_status("train") == "pending"


def test_a_retrained_model_is_evaluated_from_scratch(host: PluginHost, tmp_path: Path):
    path = api.run(config(tmp_path), host=host, echo=lambda _: None)
    run = RunDirectory.open(path)
    records = [json.loads(line) for line in run.predictions_path.read_text().splitlines()]
    records[0]["completion"] = "from the previous model"
    run.predictions_path.write_text("".join(json.dumps(record) + "\n" for record in records))
    run.manifest["stages"]["train"]["status"] = "failed"
    run.save()

    api.run(resume=path, host=host, echo=lambda _: None)
    records = [json.loads(line) for line in run.predictions_path.read_text().splitlines()]
    assert [record["completion"] for record in records] == [ANSWER, ANSWER]


def test_a_failed_stage_fails_the_run_and_the_hook_hears_why(host: PluginHost, tmp_path: Path):
    FakeTrainer.fail = True
    with pytest.raises(RuntimeError, match="out of memory"):
        api.run(config(tmp_path), host=host, echo=lambda _: None)
    (path,) = tmp_path.iterdir()
    run = RunDirectory.open(path)
    assert run.stage_status("train") == "failed" and run.manifest["status"] == "failed"
    assert hook_calls[-1] == ("run_finished", "failed", "RuntimeError")
    assert ("stage_finished", "train", "failed") not in hook_calls


def test_the_command_line_offers_the_stages_of_the_table():
    from tunix_core.cli import cli

    stop_after = next(p for p in cli.commands["run"].params if p.name == "stop_after")
    assert tuple(stop_after.type.choices) == STAGE_NAMES


def _interrupt_training(*args: Any, **kwargs: Any) -> TrainResult:
    raise KeyboardInterrupt


def test_ctrl_c_marks_the_stage_and_the_run_interrupted_and_says_how_to_continue(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(FakeTrainer, "train", _interrupt_training)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        api.run(config(tmp_path), host=host, echo=lines.append)
    (path,) = tmp_path.iterdir()
    run = RunDirectory.open(path)
    assert run.stage_status("baseline") == "done" and run.stage_status("train") == "interrupted"
    assert run.manifest["status"] == "interrupted"
    assert lines[-1] == f"interrupted; continue with: tunix run --resume {path}"
    assert hook_calls[-1] == ("run_finished", "interrupted", "KeyboardInterrupt")

    monkeypatch.undo()
    api.run(resume=path, host=host, echo=lines.append)
    assert RunDirectory.open(path).manifest["status"] == "succeeded"


def test_ctrl_c_exits_the_command_line_with_130(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from click.testing import CliRunner

    from tunix_core.cli import cli

    monkeypatch.setattr(FakeTrainer, "train", _interrupt_training)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(config(tmp_path / "runs")))
    result = CliRunner().invoke(cli, ["run", "-c", str(config_file)], obj=host)
    (path,) = (tmp_path / "runs").iterdir()
    assert result.exit_code == 130, result.output
    assert result.output.splitlines()[-1] == f"interrupted; continue with: tunix run --resume {path}"


def _hold_lock(run_path: Path) -> subprocess.Popen[str]:
    """Another process holding the run's lock (as a live ``tunix run`` does)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


HOLD_LOCK = """
import sys
from pathlib import Path
from tunix_core.layout import RunLayout
from tunix_core.rundir import run_lock
with run_lock(RunLayout(Path(sys.argv[1])), "tunix run"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_fails_at_once_naming_the_live_pid_and_a_dead_one_never_blocks(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.rundir import RunLockedError

    path = api.run(config(tmp_path), stop_after="baseline", host=host, echo=lambda _: None)
    before = (path / "run_manifest.json").read_text()
    holder = _hold_lock(path)
    try:
        with pytest.raises(RunLockedError) as caught:
            api.run(resume=path, host=host, echo=lambda _: None)
        assert str(caught.value) == (
            f"{path} is in use by pid {holder.pid} (tunix run); wait for it to end or stop it"
        )
        assert caught.value.exit_code == 1
        assert (path / "run_manifest.json").read_text() == before  # the loser wrote nothing
    finally:
        holder.kill()  # SIGKILL: the lock file stays, naming a dead pid
        holder.wait()
    assert f"pid {holder.pid} " in (path / ".lock").read_text()
    api.run(resume=path, host=host, echo=lambda _: None)
    assert RunDirectory.open(path).manifest["status"] == "succeeded"


def test_a_run_holds_its_lock_while_its_stages_run(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from tunix_core.rundir import RunLockedError, run_lock

    seen: list[str] = []

    def train_while_checking_the_lock(*args: Any, **kwargs: Any) -> TrainResult:
        run = args[2]  # (self, config, run, examples)
        refused = pytest.raises(RunLockedError, match=rf"in use by pid {os.getpid()} \(tunix run\)")
        with refused, run_lock(run, "a second writer"):  # another open file: flock refuses it
            pass
        seen.append("locked")
        return TrainResult(steps=0)

    monkeypatch.setattr(FakeTrainer, "train", train_while_checking_the_lock)
    api.run(config(tmp_path), stop_after="train", host=host, echo=lambda _: None)
    assert seen == ["locked"]


def test_a_mixture_run_saves_disjoint_splits_and_each_part_s_count_and_sha256(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.data.record import read_jsonl

    code = REPO / "packages/tunix-datasets/tests/fixtures/code_reasoning.jsonl"
    mix = [{"name": "dev-reasoning-v2", "limit": 30},
           {"name": f"jsonl:{code}", "options": {"eval_fraction": 0.5}}]  # fmt: skip
    settings = config(tmp_path / "runs")
    settings["dataset"] = {"mix": mix, "eval_limit": 3}
    path = api.run(settings, stop_after="dataset", host=host, echo=lambda _: None)
    run = RunDirectory.open(path)
    assert run.manifest["dataset"] == f"mix(dev-reasoning-v2,jsonl:{code})"
    parts = run.manifest["stages"]["dataset"]["detail"]["parts"]
    train, evaluation = read_jsonl(run.train_data_path), read_jsonl(run.eval_data_path)
    assert [p["count"] for p in parts["train"]] == [2, 2] and len(train) == 4
    assert sum(p["count"] for p in parts["eval"]) == len(evaluation) == 3
    assert not {e.question for e in train} & {e.question for e in evaluation}
    # The fixture's code reasoning reached the run's saved data byte for byte.
    saved = {e.id: e.reasoning for e in train + evaluation if e.reasoning is not None}
    original = {e.id: e.reasoning for e in read_jsonl(code)}
    assert saved and all(original[key] == text for key, text in saved.items())


def test_phases_train_in_order_each_from_the_model_the_one_before_wrote(
    host: PluginHost, tmp_path: Path
):
    phased = config(tmp_path)
    phased["training"] = {"phases": [{"trainer": "fake", "steps": 3},
                                     {"trainer": "fake", "steps": 5}]}  # fmt: skip
    path = api.run(phased, host=host, echo=lambda _: None)
    first = path / "phases" / "1-fake"
    assert FakeTrainer.seen == [(3, None, first), (5, str(first), path)]
    detail = RunDirectory.open(path).manifest["stages"]["train"]["detail"]
    assert [(p["phase"], p["trainer"], p["steps"], p["directory"]) for p in detail["phases"]] == [
        (1, "fake", 1, "phases/1-fake"), (2, "fake", 1, "."),
    ]  # fmt: skip
    assert (first / "model" / "phase.json").is_file() and (path / "model").is_dir()


def test_a_resumed_run_skips_the_phases_that_finished(host: PluginHost, tmp_path: Path):
    from tunix_core.errors import TunixError

    phased = config(tmp_path)
    phased["training"] = {"phases": [{"trainer": "fake", "steps": 3},
                                     {"trainer": "fake", "steps": 5}]}  # fmt: skip
    FakeTrainer.fail_at_steps = 5
    with pytest.raises((RuntimeError, TunixError)):
        api.run(phased, host=host, echo=lambda _: None)
    (path,) = tmp_path.iterdir()
    FakeTrainer.fail_at_steps = None
    lines: list[str] = []
    api.run(None, resume=path, host=host, echo=lines.append)
    assert [steps for steps, _, _ in FakeTrainer.seen] == [3, 5]  # phase 1 trained once
    assert any("phase 1/2 (fake) was done earlier" in line for line in lines)


TOO_DEEP = {"trainer": "picky", "max_seq_len": 64, "options": {"depth": 65}}


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        ([{"trainer": "fake", "lr": 1}], r"training\.phases\[0\]\.lr: not a field of a phase"),
        ([{"steps": 3}], r"training\.phases\[0\]: a phase is a mapping naming its trainer"),
        ([{"trainer": "nope"}], r"training\.phases\[0\]\.trainer: Unknown trainer 'nope'"),
        ([{"trainer": "fake", "steps": -1}], r"training\.phases\[0\]\.steps: must be > 0"),
        # A trainer's own error names the phase's fields, not the phase's one-phase config.
        (
            [{"trainer": "fake"}, TOO_DEEP],
            r"^training\.phases\[1\]\.options\.depth: 65 exceeds "
            r"training\.phases\[1\]\.max_seq_len=64$",
        ),
    ],
)
def test_a_bad_phase_is_refused_naming_it(host: PluginHost, tmp_path: Path, phases, message):
    from tunix_core.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        api.run({**config(tmp_path), "training": {"phases": phases}}, host=host, echo=print)
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_phase_s_data_error_in_training_names_the_phase_s_fields(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.errors import DataError

    phases = [{"trainer": "fake"}, {"trainer": "picky", "options": {"fail_with_data": True}}]
    with pytest.raises(DataError) as caught:
        api.run({**config(tmp_path), "training": {"phases": phases}}, host=host, echo=print)
    assert str(caught.value) == (
        "every prompt is longer than training.phases[1].max_seq_len - training.phases[1]."
        "options.depth tokens; raise training.phases[1].max_seq_len"
    )


def test_init_from_starts_from_another_run_s_model_and_records_it(
    host: PluginHost, tmp_path: Path
):
    first = api.run(config(tmp_path / "a"), host=host, echo=lambda _: None)
    second = api.run({**config(tmp_path / "b"), "model": {"backend": "echo",
                                                          "init_from": str(first)}},
                     host=host, echo=lambda _: None)  # fmt: skip
    assert FakeTrainer.seen[-1][1] == str(first)
    detail = RunDirectory.open(second).manifest["stages"]["train"]["detail"]
    assert detail["init_from"] == {"run": str(first), "model_fingerprint": None}


def test_init_from_must_name_a_run_with_a_trained_model(host: PluginHost, tmp_path: Path):
    from tunix_core.errors import ConfigError

    unfinished = api.run(config(tmp_path / "a"), stop_after="baseline", host=host,
                         echo=lambda _: None)  # fmt: skip
    for target, message in [(tmp_path, "is not a run directory"),
                            (unfinished, "has no trained model")]:  # fmt: skip
        with pytest.raises(ConfigError, match=f"model.init_from: .*{message}"):
            api.run({**config(tmp_path / "b"), "model": {"backend": "echo",
                                                         "init_from": str(target)}},
                    host=host, echo=lambda _: None)  # fmt: skip


def _jsonl_dataset(path: Path, answers: Sequence[tuple[str, str]], category: str = "c") -> str:
    """``jsonl:PATH`` of items with these (answer, answer_match) pairs."""
    path.write_text("".join(
        json.dumps({"id": f"q{i}", "question": f"Question {i}?", "steps": ["Think."],
                    "answer": answer, "meta": {"category": category, "answer_match": check}})
        + "\n" for i, (answer, check) in enumerate(answers)))  # fmt: skip
    return f"jsonl:{path}"


def test_a_dataset_with_a_lone_surrogate_is_refused_before_a_run_directory_exists(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.errors import DataError

    settings = config(tmp_path / "runs")
    name = _jsonl_dataset(tmp_path / "d.jsonl", [("1", "auto")] * 4, category="ma\ud800th")
    settings["dataset"] = {"name": name, "options": {"eval_fraction": 0.5}}
    with pytest.raises(DataError, match=rf"^{tmp_path / 'd.jsonl'}:1: field 'meta.category': a "
                                        "lone surrogate"):  # fmt: skip
        api.run(settings, host=host, echo=lambda _: None)
    assert not (tmp_path / "runs").exists()


def test_a_training_item_its_answer_check_cannot_judge_is_refused_before_the_first_step(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.errors import DataError

    settings = config(tmp_path / "runs")
    path = tmp_path / "d.jsonl"
    name = _jsonl_dataset(path, [("1", "number"), ("Paris", "number"), ("2", "number")])
    settings["dataset"] = {"name": name, "options": {"eval_path": str(path.with_name("e.jsonl"))}}
    _jsonl_dataset(path.with_name("e.jsonl"), [("3", "number")])
    with pytest.raises(DataError) as caught:
        api.run(settings, host=host, echo=lambda _: None)
    assert str(caught.value) == (
        f"dataset {name!r} (train split): item 'q1': answer check 'number': the expected answer "
        "must be one number, got 'Paris'"
    )
    assert not (tmp_path / "runs").exists() and FakeTrainer.seen == []
