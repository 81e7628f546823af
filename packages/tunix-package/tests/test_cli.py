"""``tunix package`` and ``tunix validate`` with the kaggle plugin, through Click."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import click
import pytest
from click.testing import CliRunner

import tunix_eval.plugin
import tunix_jax.plugin
from tunix_core import builtin
from tunix_core.cli import cli
from tunix_core.command_group import TunixGroup
from tunix_core.plugins import PluginHost
from tunix_package import plugin


@pytest.fixture
def host() -> PluginHost:
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(plugin, "kaggle", "tunix-package")
    # What packaging checks with: the jax backend and tunix-eval's evaluators and answer checks.
    host.add_plugin(tunix_jax.plugin, "jax", "tunix-jax")
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")
    host.fill_registries()
    return host


@pytest.fixture
def group(host) -> click.Group:
    group = TunixGroup("tunix", commands=dict(cli.commands))
    host.register_commands(group)
    return group


def invoke(group, host, *args):
    return CliRunner().invoke(group, [str(a) for a in args], obj=host)


def test_the_plugin_registers_the_packager_and_the_command(host, group):
    """Its tunix_register_packagers and tunix_register_commands, called by the host."""
    kaggle = host.packagers.entry("kaggle")
    assert (kaggle.target, kaggle.distribution) == ("tunix_package.kaggle:KagglePackager", "tunix-package")
    assert "package" in group.lazy_commands and group.get_command(None, "package") is not None


def test_package_then_validate_the_exported_evidence(make_run, host, group, tmp_path):
    run = make_run()
    evidence = tmp_path / "submission_runs" / "tiny"
    result = invoke(group, host, "package", "--run", run.path, "--export-evidence", evidence)
    assert result.exit_code == 0, result.output
    bundles = list(run.submission_dir.glob("*.zip"))
    assert len(bundles) == 1 and f"Bundle: {bundles[0]}" in result.output
    assert (run.submission_dir / "model" / "model_config.json").is_file()
    assert (evidence / "MANIFEST").is_file() and not (evidence / "model").exists()
    # The run's config (prediction_sample 20 by default) applies: all 6 predictions.
    assert json.loads((evidence / "MANIFEST").read_text())["predictions"]["sampled"] == 6

    for target in (evidence, run.path, run.submission_dir):
        checked = invoke(group, host, "validate", target)
        assert checked.exit_code == 0, checked.output
        assert "OK:" in checked.output


def test_package_to_another_folder(make_run, host, group, tmp_path):
    run = make_run()
    out = tmp_path / "elsewhere"
    result = invoke(group, host, "package", "--run", run.path, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.zip"))) == 1 and (out / "model" / "params").is_dir()
    assert not run.submission_dir.exists()


def test_validate_reports_a_placeholder_score_with_its_file(make_run, host, group):
    run = make_run()
    summary = run.path / "eval_summary.json"
    data = json.loads(summary.read_text())
    data["primary_score"] = "TBD"
    summary.write_text(json.dumps(data))
    checked = invoke(group, host, "validate", run.path)
    assert checked.exit_code == 1
    assert f"[kaggle] {summary}: primary_score is the placeholder 'TBD'" in checked.output
    refused = invoke(group, host, "package", "--run", run.path)
    assert refused.exit_code == 1
    assert "Error: refusing to package" in refused.output


def test_an_unknown_packager_is_a_usage_error(make_run, host, group):
    run = make_run()
    result = invoke(group, host, "package", "--run", run.path, "--packager", "kagle")
    assert result.exit_code == 2
    assert "Unknown packager 'kagle'" in result.output and "Did you mean 'kaggle'?" in result.output


def test_loading_the_plugin_and_the_packager_does_not_import_jax():
    code = ("import sys, tunix_package.plugin, tunix_package.cli, tunix_package.kaggle; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'jax', 'flax', 'orbax'}))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_packaging_a_run_in_use_is_refused_and_its_lock_file_is_not_evidence(
    make_run, host, group
):
    from tunix_core.rundir import run_lock

    run = make_run()
    with run_lock(run, "tunix run"):  # as a live run would: another open file is refused
        refused = invoke(group, host, "package", "--run", run.path)
    assert refused.exit_code == 1
    assert refused.output.strip() == (
        f"Error: {run.path} is in use by pid {os.getpid()} (tunix run); wait for it to end or stop it"
    )
    assert not run.submission_dir.exists()

    packaged = invoke(group, host, "package", "--run", run.path)
    assert packaged.exit_code == 0, packaged.output
    assert (run.path / ".lock").is_file()  # left behind, and harmless:
    checked = invoke(group, host, "validate", run.path)
    assert checked.exit_code == 0, checked.output
    (bundle,) = run.submission_dir.glob("*.zip")
    assert ".lock" not in zipfile.ZipFile(bundle).namelist()
