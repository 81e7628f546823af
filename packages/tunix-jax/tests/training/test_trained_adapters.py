"""A LoRA run exports the merged weights and, beside them, the adapters it trained; float32
weights trained with bfloat16 compute export a probe that verifies."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tunix_core.config import structure_config
from tunix_core.plugins import PluginHost
from tunix_core.protocols import RunContext

_spec = importlib.util.spec_from_file_location("train_script", Path(__file__).parent.parent / "train_script.py")  # fmt: skip
assert _spec is not None and _spec.loader is not None
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)

CONFIG = {
    "run": {"seed": 3},
    "dataset": {"system_prompt": "Solve."},
    "model": {"preset": "tiny-gemma2", "weights": "random", "dtype": "float32"},
    "training": {
        "steps": 3, "batch_size": 2, "max_seq_len": 64, "learning_rate": 1e-2,
        "lora": {"rank": 4, "alpha": 8.0},
    },
    "trainer": {"options": {"progress_bar": False, "compute_dtype": "bfloat16",
                            "lora_targets": ["q_einsum", "down_proj"]}},
}  # fmt: skip


def test_the_saved_adapters_rebuild_the_exported_weights(tmp_path):
    from tunix_jax.backend import JaxBackend
    from tunix_jax.export.verifying import verify_model_dir
    from tunix_jax.export.writing import param_fingerprint
    from tunix_jax.sft.trainer import JaxTrainer
    from tunix_jax.training.lora import load_adapters, merge_lora
    from tunix_jax.weights.loading import load_model, model_params

    config = structure_config(CONFIG)
    trainer = JaxTrainer()
    trainer.validate(config, context=RunContext(PluginHost()))
    run = train_script.open_run(tmp_path / "run")
    result = trainer.train(config, run, train_script.tiny_examples(8), backend=JaxBackend(),
                           context=RunContext(PluginHost(), run))  # fmt: skip
    assert result.steps == 3

    adapters = run.model_dir / "adapters"
    settings = json.loads((adapters / "adapter_config.json").read_text())
    assert (settings["rank"], settings["alpha"]) == (4, 8.0)
    assert settings["targets"] == ["q_einsum", "down_proj"]

    base, _ = load_model("tiny-gemma2", "random", seed=3)
    untrained = param_fingerprint(model_params(base))
    assert load_adapters(base, adapters) == 2 * 4
    merge_lora(base)
    assert param_fingerprint(model_params(base)) == result.export.fingerprint != untrained

    report = verify_model_dir(run.model_dir)
    assert report.ok and report.max_abs_diff == 0.0, report.to_dict()
