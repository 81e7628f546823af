"""The example per-step logger: its file format, and a tiny training run calling it once
per optimizer step."""

from __future__ import annotations

import pytest

import tunix_plugin_example.plugin
from tunix_core.config import structure_config
from tunix_core.jsonio import read_jsonl
from tunix_core.plugins import PluginHost
from tunix_core.protocols import RunContext, TransformRegistry
from tunix_core.rundir import RunDirectory
from tunix_plugin_example.digit_sum import DigitSumDataset
from tunix_plugin_example.step_log import log_step, read_log

TRANSFORMS = TransformRegistry()  # digit-sum reads no user rows, so it names no transform


def test_log_step_appends_one_line_per_step(tmp_path):
    log_step(tmp_path, 1, {"loss": 2.5, "grad_norm": 1.0})
    log_step(tmp_path, 2, {"loss": 1.25})
    assert read_log(tmp_path) == [(1, 2.5), (2, 1.25)]


def test_a_tiny_training_run_logs_every_step(tmp_path):
    pytest.importorskip("tunix_jax")
    from tunix_jax.backend import JaxBackend
    from tunix_jax.sft.trainer import JaxTrainer

    host = PluginHost()
    host.add_plugin(tunix_plugin_example.plugin, "digit-sum", "tunix-plugin-example")
    config = structure_config({
        "dataset": {"system_prompt": "Solve."},
        "model": {"preset": "tiny-gemma3", "weights": "random"},
        "training": {"steps": 3, "batch_size": 2, "max_seq_len": 128, "checkpoint_every": 2,
                     "log_every": 1, "lora": {"rank": 2}},
        "trainer": {"options": {"progress_bar": False}},
    })  # fmt: skip
    run = RunDirectory.create(tmp_path, "run", model_id="tiny", dataset="digit-sum",
                              trainer="jax", config_path=None, command=["pytest"])  # fmt: skip
    examples = DigitSumDataset().load("train", argument=None, seed=0, transforms=TRANSFORMS, options={})[:8]
    trainer = JaxTrainer()
    context = RunContext(host, run)
    trainer.validate(config, context=context)
    trainer.train(config, run, examples, backend=JaxBackend(), context=context)
    logged = read_log(run.path)
    assert [step for step, _ in logged] == [1, 2, 3]
    losses = [round(r["loss"], 6) for r in read_jsonl(run.metrics_path)]
    assert [loss for _, loss in logged] == losses
