"""tunix_core.api.run: the one code path of ``tunix run`` and of notebooks, driven here
with a trainer that needs no model (the run stops before training)."""

import json
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from click.testing import CliRunner

from tunix_core import api, builtin
from tunix_core.cli import cli
from tunix_core.config import RunConfig, structure_config
from tunix_core.errors import ConfigError
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import AnswerVerdict

TRAINER = """
class NoModelTrainer:
    def validate(self, config, *, context):
        pass

    def train(self, config, run, train_examples, *, backend, context):
        raise AssertionError("these tests stop before training")


class NoModelBackend:
    name = "no-model"

    def validate(self, spec):
        pass

    def load(self, spec, *, progress):
        raise AssertionError("these tests stop before any stage needs a model")
"""


@hookimpl
def _register_trainers(registry):
    registry.register("no-model", "api_test_trainer:NoModelTrainer", description="test")


@hookimpl
def _register_backends(registry):
    registry.register("no-model", "api_test_trainer:NoModelBackend", description="test")


def _verbatim(answer, expected, options):
    # Called before a run starts too: each item's expected answer must be one it can judge.
    return AnswerVerdict(answer.strip() == expected, "verbatim")


@hookimpl
def _register_answer_checks(registry):
    # dev-reasoning-v2 names these checks; a run refuses to start without them.
    for name in ("auto", "exact", "list"):
        registry.register(name, f"{__name__}:_verbatim")


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, datasets_plugin: ModuleType) -> PluginHost:
    (tmp_path / "api_test_trainer.py").write_text(textwrap.dedent(TRAINER))
    monkeypatch.syspath_prepend(str(tmp_path))
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(datasets_plugin, "datasets", "tunix-datasets")
    test_plugin = plugin_module(
        "test-plugin",
        tunix_register_trainers=_register_trainers,
        tunix_register_backends=_register_backends,
        tunix_register_answer_checks=_register_answer_checks,
    )
    host.add_plugin(test_plugin, "t", "t")
    host.fill_registries()
    return host


def small_config(output_dir: Path) -> dict:
    return {
        "run": {"name": "api", "output_dir": str(output_dir)},
        "dataset": {"name": "dev-reasoning-v2", "train_limit": 4, "eval_limit": 2},
        "trainer": {"name": "no-model"},
        "model": {"backend": "no-model"},
        "eval": {"evaluators": [], "baseline": False},
        "package": {"enabled": False},
    }


def manifest(run: Path) -> dict:
    return json.loads((run / "run_manifest.json").read_text())


def test_run_from_a_mapping_then_resume(host, tmp_path: Path):
    lines: list[str] = []
    run = api.run(small_config(tmp_path / "runs"), overrides=["dataset.train_limit=3"],
                  stop_after="dataset", host=host, echo=lines.append)  # fmt: skip
    assert run.parent == tmp_path / "runs" and run.name.startswith("api-")
    assert lines[0] == f"Run directory: {run}"
    assert "[dataset] done" in "\n".join(lines)
    recorded = manifest(run)
    assert recorded["status"] == "interrupted"
    assert recorded["command"] == ["tunix_core.api.run", "<dict>", "dataset.train_limit=3"]
    assert len((run / "data" / "train.jsonl").read_text().splitlines()) == 3
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["dataset"]["train_limit"] == 3

    lines.clear()
    again = api.run(resume=run, stop_after="baseline", host=host, echo=lines.append)
    assert again == run
    assert lines[:2] == [f"Resuming {run}", "[dataset] already done, skipping"]
    assert manifest(run)["stages"]["baseline"]["status"] == "skipped"


def test_run_from_a_yaml_file_and_from_a_config_object(host, tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(small_config(tmp_path / "a")))
    from_file = api.run(path, stop_after="dataset", host=host, echo=lambda _: None)
    assert manifest(from_file)["config_path"] == str(path)
    assert manifest(from_file)["command"] == ["tunix_core.api.run", str(path)]

    config = structure_config(small_config(tmp_path / "b"))
    assert isinstance(config, RunConfig)
    from_object = api.run(config, overrides=["run.name=obj"], stop_after="dataset", host=host,
                          echo=lambda _: None, command=["my", "notebook"])  # fmt: skip
    assert from_object.parent == tmp_path / "b" and from_object.name.startswith("obj-")
    assert manifest(from_object)["command"] == ["my", "notebook"]


def test_errors_come_before_a_run_directory_exists(host, tmp_path: Path):
    bad = small_config(tmp_path / "runs")
    bad["training"] = {"learning_rate": -1}
    with pytest.raises(ConfigError, match=r"training\.learning_rate: must be > 0, got -1"):
        api.run(bad, host=host)
    with pytest.raises(ConfigError, match="stop_after: must be one of dataset, baseline"):
        api.run(small_config(tmp_path / "runs"), stop_after="training", host=host)
    with pytest.raises(ConfigError, match="resume: a resumed run keeps its saved config"):
        api.run(small_config(tmp_path / "runs"), resume=tmp_path, host=host)
    assert not (tmp_path / "runs").exists()


def test_tunix_run_goes_through_the_api(host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls = []
    monkeypatch.setattr(api, "run", lambda config, **kwargs: calls.append((config, kwargs)))
    result = CliRunner().invoke(
        cli, ["run", "--trainer", "no-model", "--set", "eval.limit=2", "--stop-after", "dataset"],
        obj=host,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    ((config, kwargs),) = calls
    assert config is None and kwargs["resume"] is None and kwargs["stop_after"] == "dataset"
    assert kwargs["overrides"] == ["trainer.name=no-model", "eval.limit=2"]
    assert kwargs["host"] is host
