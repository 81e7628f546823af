import json
from pathlib import Path
from types import ModuleType

import click
import pytest
from click.testing import CliRunner

from tunix_core import builtin
from tunix_core.cli import cli
from tunix_core.command_group import TunixGroup
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, PluginInfo, plugin_module
from tunix_core.rundir import RunDirectory


@hookimpl
def _register_trainers(registry):
    registry.register("jax", "tunix_jax.sft.trainer:JaxTrainer", description="JAX SFT")


@pytest.fixture
def host(datasets_plugin: ModuleType) -> PluginHost:
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(datasets_plugin, "datasets", "tunix-datasets")
    trainer_plugin = plugin_module("test-plugin", tunix_register_trainers=_register_trainers)
    host.add_plugin(trainer_plugin, "jax", "tunix-jax")
    host.plugins += [
        PluginInfo("core", "tunix_core.builtin", "tunix-core", "0.1.0", "loaded"),
        PluginInfo("jax", "tunix_jax.plugin", "tunix-jax", "0.1.0", "loaded"),
        PluginInfo("bad", "bad.plugin", "tunix-bad", "9.9", "failed", error="ImportError: nope"),
    ]
    host.fill_registries()
    return host


def invoke(host: PluginHost, *args: str):
    return CliRunner().invoke(cli, list(args), obj=host, catch_exceptions=False)


def test_version(host):
    result = invoke(host, "--version")
    assert result.exit_code == 0 and result.output.startswith("tunix, version ")


def test_plugins_lists_distributions_status_and_what_they_provide(host):
    result = invoke(host, "plugins")
    assert result.exit_code == 0
    assert "tunix-jax 0.1.0  [jax]  loaded" in result.output
    assert "trainers: jax" in result.output
    assert "tunix-bad 9.9  [bad]  failed" in result.output
    assert "error: ImportError: nope" in result.output


def test_plugins_json(host):
    data = json.loads(invoke(host, "plugins", "--json").output)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["jax"]["provides"] == {"trainers": ["jax"]}
    assert by_name["bad"]["status"] == "failed"
    assert data["conflicts"] == []


def test_unknown_trainer_exits_2_lists_installed_and_creates_nothing(host, tmp_path: Path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(
        cli,
        ["run", "--trainer", "nope", "--dataset", "dev-reasoning-v2", "--output-dir", str(out)],
        obj=host,
    )
    assert result.exit_code == 2
    assert "trainer.name: Unknown trainer 'nope'. Installed: jax." in result.output
    assert not out.exists()


def test_misspelled_trainer_gets_a_suggestion(host, tmp_path: Path):
    result = CliRunner().invoke(
        cli, ["run", "--trainer", "jxa", "--output-dir", str(tmp_path / "r")], obj=host
    )
    assert result.exit_code == 2 and "Did you mean 'jax'?" in result.output


def test_bad_config_value_exits_2_with_path(host, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  learning_rate: -1.0\n")
    result = CliRunner().invoke(cli, ["run", "-c", str(config)], obj=host)
    assert result.exit_code == 2
    assert "training.learning_rate: must be > 0, got -1.0" in result.output


def test_yaml_error_in_config_names_file_and_line(host, tmp_path: Path):
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  steps: [\n")
    result = CliRunner().invoke(cli, ["run", "-c", str(config)], obj=host)
    assert result.exit_code == 2 and f"{config}:3:" in result.output


def test_resume_refuses_extra_options(host, tmp_path: Path):
    result = CliRunner().invoke(cli, ["run", "--resume", str(tmp_path), "--steps", "3"], obj=host)
    assert result.exit_code == 2 and "--resume continues a run with its saved config" in result.output


def test_validate_good_and_bad_run(host, tmp_path: Path):
    run = RunDirectory.create(
        tmp_path, "r1", model_id="m@w", dataset="d", trainer="jax", config_path=None, command=["t"]
    )
    good = invoke(host, "validate", str(run.path))
    assert good.exit_code == 0
    assert "1 evidence file(s) valid; packager checks: no packager installed" in good.output
    (run.path / "metrics.jsonl").write_text('{"step": 1, "loss": null}\n')
    bad = CliRunner().invoke(cli, ["validate", str(run.path)], obj=host)
    assert bad.exit_code == 1
    assert "metrics.jsonl:1: loss: None is not of type 'number'" in bad.output


def test_plugin_commands_are_added(host):
    @click.command("hello")
    def hello() -> None:
        click.echo("hi from a plugin")

    @hookimpl
    def tunix_register_commands(cli):
        cli.add_command(hello)

    host.add_plugin(plugin_module("test-plugin", tunix_register_commands=tunix_register_commands), "hi", "hi")
    group = TunixGroup("t", commands=dict(cli.commands))
    host.register_commands(group)
    result = CliRunner().invoke(group, ["hello"], obj=host)
    assert result.output == "hi from a plugin\n"
