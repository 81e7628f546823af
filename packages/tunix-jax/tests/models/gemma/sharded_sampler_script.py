"""Generates with the tiny model over meshes of several (fake CPU) devices and prints what
the multi-device tests compare, as JSON. Usage: ``python sharded_sampler_script.py SPEC``.

SPEC keys: ``prompts`` (token id lists), ``max_new_tokens``, ``meshes`` ([data, fsdp]
pairs) and ``texts`` (prompts for the ``jax`` backend's model over a data=2 x fsdp=2 mesh).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re
import sys
from pathlib import Path

import jax
from flax import nnx

from tunix_core.config import structure_config
from tunix_core.protocols import ModelSpec
from tunix_jax import sharding as mesh_lib
from tunix_jax.backend import JaxBackend
from tunix_jax.models.gemma.sampler import Sampler
from tunix_jax.weights.loading import load_model

# The tiny models of the in-process tests (random norm scales included).
_spec = importlib.util.spec_from_file_location("conftest", Path(__file__).parents[2] / "conftest.py")
assert _spec is not None and _spec.loader is not None
_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_conftest)
make_tiny = _conftest.make_tiny


def sharded_generation(
    prompts: list[list[int]], max_new_tokens: int, mesh_axes: list[int], seed: int
):
    """Tokens over one mesh, the shardings of the sampler's inputs and the per-device
    shapes of the KV cache in the compiled program."""
    model, tokenizer = make_tiny("tiny-gemma3", seed=seed)
    sampler = Sampler(model, tokenizer, mesh_lib.make_mesh(*mesh_axes))
    compiled, calls = sampler._compiled, []
    sampler._compiled = lambda *args, **kwargs: (
        calls.append((args, kwargs)) or compiled(*args, **kwargs)
    )
    result = sampler.generate_ids(prompts, max_new_tokens=max_new_tokens, stop_ids=())
    ((args, kwargs),) = calls
    state, rows = args[0], args[1:4]
    expected = mesh_lib.state_shardings(sampler.mesh, state)
    program = compiled.lower(*args, **kwargs).compile().as_text()
    cfg = model.config
    # A cache buffer is f32[rows, slots, kv heads, head dim]; count rows as a device sees them.
    cache = rf"f32\[(\d+),\d+,{cfg.num_kv_heads},{cfg.head_dim}\]"
    return {
        "tokens": result.tokens,
        "stop_reasons": result.stop_reasons,
        "batch": int(rows[0].shape[0]),
        "row_specs": [list(array.sharding.spec) for array in rows],
        "params_as_trainer": jax.tree.leaves(
            jax.tree.map(lambda x, s: x.sharding == s, state, expected)
        ),
        "fsdp_params": sum("fsdp" in str(x.sharding.spec) for x in jax.tree.leaves(state)),
        "cache_rows": sorted({int(n) for n in re.findall(cache, program)}),
    }


def trainer_generation(texts: list[str]):
    """Completions from the ``jax`` backend's model on a data=2 x fsdp=2 mesh, the same on
    one device, and what generation logged."""
    config = structure_config({
        "model": {"preset": "tiny-gemma3", "weights": "random",
                  "options": {"mesh_data": 2, "mesh_fsdp": 2}},
    })  # fmt: skip
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logging.getLogger("tunix").addHandler(Collect())
    logging.getLogger("tunix").setLevel(logging.INFO)
    generator = JaxBackend().load(ModelSpec.from_config(config), progress=print)
    sharded = generator.generate(texts, max_new_tokens=8)
    generator.generate(texts[::-1], max_new_tokens=8)  # same batch size: no second line
    model, tokenizer = load_model("tiny-gemma3", "random", seed=config.run.seed)
    alone = Sampler(model, tokenizer).generate(texts, max_new_tokens=8)
    mesh = generator.sampler.mesh
    return {
        "sharded": sharded,
        "one_device": alone,
        "mesh": dict(mesh.shape),
        "log": [line for line in records if line.startswith("[generate]")],
        "fsdp_params": sum(
            "fsdp" in str(x.sharding.spec)
            for x in jax.tree.leaves(nnx.state(generator.sampler.model))
        ),
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    default = Sampler(*make_tiny(), mesh_lib.make_mesh())
    out = {
        "devices": jax.device_count(),
        "batch_sizes": {n: default.batch_size(n) for n in (1, 5, 7, 13, 33, 48)},
        "meshes": [
            sharded_generation(spec["prompts"], spec["max_new_tokens"], axes, spec["seed"])
            for axes in spec["meshes"]
        ],
        "trainer": trainer_generation(spec["texts"]),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
