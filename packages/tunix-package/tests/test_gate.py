"""``tunix gate RUN``: the judges' path through google-tunix's loader and Sampler (compat
session, with google-tunix installed), and what it says without google-tunix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tunix_core.config import structure_config, unstructure_config
from tunix_core.data.record import example_from_dict, write_jsonl
from tunix_core.errors import ConfigError
from tunix_core.plugins import get_host
from tunix_core.rundir import RunDirectory
from tunix_package.gate import GATE_FILE, check_threshold, gate_items, gate_problems, run_gate

QUESTION = {"id": "q1", "question": "What is 2 + 3?", "steps": ["2 plus 3 is 5."],
            "answer": "5", "meta": {"category": "arithmetic"}}  # fmt: skip


def gate_run(root: Path, export: Path) -> RunDirectory:
    """A finished run of the random tiny-gemma3 whose export is ``export``."""
    run = RunDirectory.create(root, "gated", model_id="tiny-gemma3@random", dataset="arith",
                              trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip
    config = structure_config({"model": {"preset": "tiny-gemma3", "weights": "random"}})
    run.config_path.write_text(yaml.safe_dump(unstructure_config(config)))
    write_jsonl([example_from_dict(QUESTION)], run.eval_data_path)
    shutil.copytree(export, run.model_dir)
    return run


def test_the_gate_takes_judging_mix_prompts_from_every_domain_in_turn(tmp_path) -> None:
    """Four prompts of judging-mix's first domain would make the gate a creative-writing
    check; seven cover its seven domains, one each."""
    host = get_host()
    run = RunDirectory.create(tmp_path, "gated", model_id="m", dataset="arith", trainer="jax",
                              config_path=None, command=["tunix"])  # fmt: skip
    write_jsonl([example_from_dict(QUESTION)], run.eval_data_path)
    items = gate_items(run, host, count=7, seed=0)
    assert [item.id for item in items[:1]] == ["q1"]
    domains = [item.meta.category for item in items[1:]]
    assert len(domains) == 7 and len(set(domains)) == 7, domains


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_a_threshold_outside_zero_to_one_is_refused_in_one_line(bad: float) -> None:
    with pytest.raises(ConfigError, match=rf"^--threshold: must be between 0 and 1, got {bad}$"):
        check_threshold(bad)


def test_a_report_below_its_threshold_fails_validation() -> None:
    failed = {"ran": True, "passed": False, "format_rate": 0.5, "threshold": 0.9}
    assert gate_problems(failed, "judges_path.json") == [
        "judges_path.json: the format rate through google-tunix's Sampler, 0.5, is below "
        "the threshold 0.9"
    ]
    assert gate_problems({**failed, "passed": True}, "j") == []
    assert gate_problems({"ran": False, "reason": "google-tunix is not installed"}, "j") == []


def test_without_google_tunix_the_gate_says_it_did_not_run(tiny_export, tmp_path) -> None:
    pytest.importorskip("tunix_jax")
    from tunix_jax.export.google_tunix import google_tunix_available

    if google_tunix_available():
        pytest.skip("google-tunix is installed here")
    run = gate_run(tmp_path, tiny_export[0])
    report = run_gate(run.path, get_host())
    assert report["ran"] is False
    assert report["reason"] == "google-tunix is not installed: the judges' path did not run"
    assert json.loads((run.path / GATE_FILE).read_text()) == report


@pytest.mark.compat
def test_the_judges_path_samples_through_google_tunix(tiny_export, tmp_path) -> None:
    pytest.importorskip("tunix.generate.sampler")
    run = gate_run(tmp_path, tiny_export[0])
    report = run_gate(run.path, get_host(), threshold=0.0, count=2, max_new_tokens=8)
    assert report["ran"] is True and report["passed"] is True
    # One eval item of the run and two judging-mix items.
    assert report["per_item"][0]["id"] == "q1" and report["items"] == 3
    assert 0 < report["longest_output_tokens"] <= 8
    assert 0.0 <= report["format_rate"] <= 1.0 and 0.0 <= report["agreement_rate"] <= 1.0
    strict = run_gate(run.path, get_host(), threshold=1.0, count=1, max_new_tokens=8)
    # A random model writes no exact format: a threshold of 1 fails, and validation says so.
    assert strict["passed"] is False and gate_problems(strict, GATE_FILE)


def test_packaging_refuses_a_run_whose_judges_path_failed(make_run, options) -> None:
    from tunix_core.errors import EvidenceError
    from tunix_core.protocols import RunContext
    from tunix_package.kaggle import KagglePackager

    run = make_run()
    # judges_path: false keeps the report `tunix gate` wrote (package would run it again).
    options = {**options, "judges_path": False}
    failed = {"ran": True, "passed": False, "format_rate": 0.25, "threshold": 0.9}
    (run.path / GATE_FILE).write_text(json.dumps(failed))
    with pytest.raises(EvidenceError, match="failed validation") as caught:
        KagglePackager().package(run, options, context=RunContext(get_host()))
    assert (f".zip:{GATE_FILE}: the format rate through google-tunix's Sampler, 0.25, is below "
            "the threshold 0.9") in str(caught.value)  # fmt: skip
    # A report that passed goes into the bundle and validates.
    (run.path / GATE_FILE).write_text(json.dumps({**failed, "passed": True}))
    KagglePackager().package(run, options, context=RunContext(get_host()))


def test_packaging_runs_the_gate_and_says_when_it_did_not_run(make_run, options) -> None:
    import zipfile

    from tunix_core.protocols import RunContext
    from tunix_jax.export.google_tunix import google_tunix_available
    from tunix_package.kaggle import KagglePackager

    if google_tunix_available():
        pytest.skip("google-tunix is installed here")
    run = make_run()
    lines: list[str] = []
    context = RunContext(get_host(), progress=lines.append)
    bundle = KagglePackager().package(run, options, context=context)
    assert ("[package] judges' path: NOT RUN (google-tunix is not installed: the judges' path "
            "did not run)") in lines  # fmt: skip
    with zipfile.ZipFile(bundle) as archive:
        recorded = json.loads(archive.read(GATE_FILE))
    assert recorded == {"ran": False, "threshold": 0.9,
                        "reason": "google-tunix is not installed: the judges' path did not run"}  # fmt: skip


def test_packaging_with_the_gate_off_runs_none(make_run, options) -> None:
    from tunix_core.protocols import RunContext
    from tunix_package.kaggle import KagglePackager

    run = make_run()
    lines: list[str] = []
    KagglePackager().package(run, {**options, "judges_path": False},
                             context=RunContext(get_host(), progress=lines.append))  # fmt: skip
    assert any(line.startswith("[package] judges' path: off") for line in lines)
    assert not (run.path / GATE_FILE).exists()


@pytest.mark.compat
def test_packaging_runs_the_gate_through_google_tunix(make_run, options) -> None:
    import zipfile

    pytest.importorskip("tunix.generate.sampler")
    from tunix_core.errors import EvidenceError
    from tunix_core.protocols import RunContext
    from tunix_package.kaggle import KagglePackager

    run = make_run()
    lines: list[str] = []
    context = RunContext(get_host(), progress=lines.append)
    # A random model writes no exact format: threshold 0 passes it, 1 refuses the bundle.
    bundle = KagglePackager().package(run, {**options, "judges_path_threshold": 0.0},
                                      context=context)  # fmt: skip
    with zipfile.ZipFile(bundle) as archive:
        recorded = json.loads(archive.read(GATE_FILE))
    assert recorded["ran"] is True and recorded["passed"] is True
    assert any(line.startswith("[package] judges' path passed:") for line in lines)
    with pytest.raises(EvidenceError, match="is below the threshold 1"):
        KagglePackager().package(run, {**options, "judges_path_threshold": 1.0}, context=context)


@pytest.mark.parametrize(("option", "message"), [
    ({"judges_path": "yes"}, "package.options.judges_path: must be true or false, got 'yes'"),
    ({"judges_path_threshold": 1.5},
     "package.options.judges_path_threshold: must be between 0 and 1, got 1.5"),
])  # fmt: skip
def test_bad_gate_options_are_one_line(make_run, options, option, message) -> None:
    from tunix_core.protocols import RunContext
    from tunix_package.kaggle import KagglePackager

    run = make_run()
    with pytest.raises(ConfigError) as caught:
        KagglePackager().package(run, {**options, **option}, context=RunContext(get_host()))
    assert str(caught.value) == message
    assert not run.submission_dir.exists()


def test_the_command_refuses_a_bad_threshold_in_one_line(tmp_path) -> None:
    from click.testing import CliRunner

    from tunix_core.cli import cli
    from tunix_core.command_group import TunixGroup
    from tunix_core.plugins import PluginHost
    from tunix_package import plugin

    host = PluginHost()
    host.add_plugin(plugin, "kaggle", "tunix-package")
    host.fill_registries()
    group = TunixGroup("tunix", commands=dict(cli.commands))
    host.register_commands(group)
    result = CliRunner().invoke(group, ["gate", str(tmp_path), "--threshold", "1.5"], obj=host)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["Error: --threshold: must be between 0 and 1, got 1.5"], result.output
