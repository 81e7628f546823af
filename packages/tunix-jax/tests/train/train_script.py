"""Runs the ``jax`` trainer on the tiny model in a fresh process (for the resume and
multi-device tests). Usage: ``python train_script.py RUN_DIR JSON_SPEC``.

SPEC keys: ``config`` (a run configuration mapping), ``examples`` (how many),
and ``batch_delay`` (seconds to sleep per batch, so a test can kill the run mid-way).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tunix_core.config import structure_config
from tunix_core.data.record import ExampleMeta, ReasoningExample
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
        from tunix_jax.train import loop

        original = loop._stacked_batch

        def slow(*args, **kwargs):
            time.sleep(delay)
            return original(*args, **kwargs)

        loop._stacked_batch = slow
    from tunix_jax.backend import JaxBackend
    from tunix_jax.trainer import JaxTrainer

    trainer = JaxTrainer()
    trainer.validate(config)
    run = open_run(run_path)
    examples = tiny_examples(spec.get("examples", 16))
    result = trainer.train(config, run, examples, backend=JaxBackend(), progress=print)
    print(json.dumps({"steps": result.steps, "stopped_early": result.stopped_early}))


if __name__ == "__main__":
    main()
