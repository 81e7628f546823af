"""One process of a data-parallel SFT run of the tiny model (for the multi-process test).
Usage: ``python multi_process_script.py RUN_DIR JSON_CONFIG``.

With ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` set it
joins the other processes through ``jax.distributed``; without them it trains alone.
Every process trains on the global mesh through tunix's own loop
(:func:`tunix_jax.training.loop.run_training`) and prints one JSON line: its process
index, the processes and devices it saw, and the steps it took.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tunix_core.config import structure_config
from tunix_core.protocols import ModelSpec
from tunix_core.rundir import RunDirectory
from tunix_jax import sharding as mesh_lib


def main() -> None:
    run_path, config = Path(sys.argv[1]), structure_config(json.loads(sys.argv[2]))
    # Before anything touches a device, as the backend does.
    mesh_lib.initialize_distributed()
    import jax

    from tunix_core.data.render import render_example
    from tunix_jax.backend import JaxBackend
    from tunix_jax.options import trainer_options
    from tunix_jax.training.data import tokenize_pairs
    from tunix_jax.training.loop import prepare_model, run_training, training_model

    sys.path.insert(0, str(Path(__file__).parent))
    from train_script import tiny_examples

    options = trainer_options(config)
    base = JaxBackend().load(ModelSpec.from_config(config), progress=print)
    rendered = [render_example(e, config.dataset.system_prompt) for e in tiny_examples(16)]
    examples, _ = tokenize_pairs([(r.prompt, r.completion) for r in rendered], base.tokenizer,
                                 config.training.max_seq_len)  # fmt: skip
    model = prepare_model(config, options, training_model(base.transformer, config, options))
    if jax.process_index() == 0:
        RunDirectory.create(run_path.parent, run_path.name, model_id="tiny", dataset="tiny",
                                  trainer="jax", config_path=None, command=["multi_process"])  # fmt: skip
    # The other processes wait for process 0's run directory (a shared disk on a pod).
    mesh_lib.sync_processes("run directory")
    run = RunDirectory.open(run_path)
    outcome = run_training(config, run, examples, model, options=options, mesh=base.mesh,
                           started_at=time.time(), progress=print)  # fmt: skip
    summary = {
        "process": jax.process_index(), "processes": jax.process_count(),
        "devices": jax.device_count(), "local_devices": jax.local_device_count(),
        "steps": outcome.result.steps,
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
