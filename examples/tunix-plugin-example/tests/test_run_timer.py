"""The run timer: the example's tunix_run_started, tunix_stage_finished and
tunix_run_finished hooks, called through the plugin host as the runner calls them."""

import logging
from pathlib import Path

import pytest

import tunix_plugin_example.plugin
from tunix_core.plugins import PluginHost
from tunix_core.rundir import RunDirectory


@pytest.fixture
def host() -> PluginHost:
    host = PluginHost()
    host.add_plugin(tunix_plugin_example.plugin, "digit-sum", "tunix-plugin-example")
    return host


def make_run(root: Path, dataset: str) -> RunDirectory:
    return RunDirectory.create(root, f"{dataset}-run", model_id="m@random", dataset=dataset,
                               trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip


def test_a_digit_sum_run_logs_its_stage_times_when_it_ends(host, tmp_path, caplog):
    run = make_run(tmp_path, "digit-sum")
    hook = host.manager.hook
    with caplog.at_level(logging.INFO, logger="tunix.example.run_timer"):
        hook.tunix_run_started(run=run, config={"dataset": {"name": "digit-sum"}})
        hook.tunix_stage_finished(run=run, stage="dataset", seconds=0.25)
        hook.tunix_stage_finished(run=run, stage="train", seconds=12.0)
        hook.tunix_run_finished(run=run, status="succeeded", error=None)
    assert caplog.messages == [
        "digit-sum run digit-sum-run succeeded after 12.2s (dataset 0.2s, train 12.0s)"
    ]


def test_runs_on_other_datasets_are_left_alone(host, tmp_path, caplog):
    run = make_run(tmp_path, "dev-reasoning-v2")
    hook = host.manager.hook
    with caplog.at_level(logging.INFO, logger="tunix.example.run_timer"):
        hook.tunix_run_started(run=run, config={"dataset": {"name": "dev-reasoning-v2"}})
        hook.tunix_stage_finished(run=run, stage="dataset", seconds=0.25)
        hook.tunix_run_finished(run=run, status="failed", error=RuntimeError("x"))
    assert caplog.messages == []
