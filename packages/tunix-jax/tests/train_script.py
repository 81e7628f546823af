"""Runs the ``jax`` trainer on the tiny model in a fresh process (for the resume and
multi-device tests). Usage: ``python train_script.py RUN_DIR JSON_SPEC``.

SPEC keys: ``config`` (a run configuration mapping; ``trainer.name`` ``jax`` or ``grpo``),
``examples`` (how many), and ``batch_delay`` (seconds to sleep per batch, so a test can
kill the run mid-way). The ``grpo`` trainer scores with :func:`grpo_rewards`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tunix_core.config import RunConfig, structure_config
from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.plugins import PluginHost
from tunix_core.protocols import RunContext
from tunix_core.rundir import RunDirectory


def tiny_examples(count: int) -> list[ReasoningExample]:
    return [
        ReasoningExample(
            id=f"ex{i}",
            question=f"What is {i} + {i % 7}?",
            steps=(f"Add {i} and {i % 7}.", f"{i} + {i % 7} = {i + i % 7}"),
            answer=str(i + i % 7),
            meta=ExampleMeta(category="arithmetic"),
        )
        for i in range(count)
    ]


def starts_with_digit(prompts, completions, expected, meta, *, context) -> list[float]:
    """A reward a tiny random model learns in a few GRPO steps: about 2 % of its first
    tokens are digits (10 of 512 byte-level ids)."""
    return [1.0 if text[:1].isdigit() else 0.0 for text in completions]


def grpo_host() -> PluginHost:
    """A host with no plugin, only the reward GRPO trains on here."""
    host = PluginHost()
    host.rewards.register("starts_with_digit", "train_script:starts_with_digit")
    return host


def make_trainer(config: RunConfig) -> Any:
    if config.trainer.name == "grpo":
        from tunix_jax.rl.grpo.trainer import GrpoTrainer

        return GrpoTrainer()
    from tunix_jax.sft.trainer import JaxTrainer

    return JaxTrainer()


def open_run(path: Path) -> RunDirectory:
    if (path / "run_manifest.json").exists():
        return RunDirectory.open(path)
    return RunDirectory.create(
        path.parent, path.name, model_id="tiny", dataset="tiny", trainer="jax",
        config_path=None, command=["train_script"],
    )  # fmt: skip


def main() -> None:
    run_path, spec = Path(sys.argv[1]), json.loads(sys.argv[2])
    config = structure_config(spec["config"])
    delay = float(spec.get("batch_delay", 0.0))
    if delay:
        from tunix_jax.rl.grpo import trainer as grpo_trainer
        from tunix_jax.training import loop

        def slowed(original):
            def slow(*args, **kwargs):
                time.sleep(delay)
                return original(*args, **kwargs)

            return slow

        loop._stacked_batch = slowed(loop._stacked_batch)
        grpo_trainer.GrpoLoop.sample = slowed(grpo_trainer.GrpoLoop.sample)
    from tunix_jax.backend import JaxBackend

    trainer = make_trainer(config)
    context = RunContext(grpo_host())
    trainer.validate(config, context=context)
    run = open_run(run_path)
    examples = tiny_examples(spec.get("examples", 16))
    result = trainer.train(config, run, examples, backend=JaxBackend(),
                           context=context.within(run, print))  # fmt: skip
    print(json.dumps({"steps": result.steps, "stopped_early": result.stopped_early}))


if __name__ == "__main__":
    main()
