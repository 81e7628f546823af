"""Data-parallel generation: a mesh of 4 fake CPU devices (in a subprocess) gives the
one-device tokens, with the batch and the KV cache split by rows."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunix_core.protocols import ModelSpec
from tunix_jax.backend import JaxModel
from tunix_jax.models.gemma.sampler import Sampler, bucket
from tunix_jax.sharding import make_mesh

SCRIPT = Path(__file__).parent / "sharded_sampler_script.py"
# 7 prompts: not a multiple of the 4 devices, so the batch needs a padding row.
PROMPTS = [[2, 10, 11, 12], [2, *range(20, 33)], [2, 7], [2, 5, 6, 7, 8, 9], [2, 200, 201, 202],
           [2, 99, 98, 97, 96], [2, 300, 301]]  # fmt: skip
TEXTS = ["hello", "a longer prompt", "x", "why is the sky blue?", "2 + 2 =", "ok", "tunix"]
NEW_TOKENS = 12
MESHES = [[4, 1], [2, 2], [1, 4]]  # [data, fsdp]
SEED = 2  # a tiny model whose 7 rows all generate different tokens


@pytest.fixture(scope="module")
def four_devices():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*sys.path, env.get("PYTHONPATH", "")])
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    spec = {"prompts": PROMPTS, "max_new_tokens": NEW_TOKENS, "meshes": MESHES, "texts": TEXTS,
            "seed": SEED}  # fmt: skip
    done = subprocess.run([sys.executable, str(SCRIPT), json.dumps(spec)], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("mesh", MESHES, ids=lambda axes: f"data{axes[0]}-fsdp{axes[1]}")
def test_four_devices_generate_the_one_device_tokens(mesh, four_devices, shared_sampler):
    one = shared_sampler("tiny-gemma3", seed=SEED).generate_ids(
        PROMPTS, max_new_tokens=NEW_TOKENS, stop_ids=()
    )
    assert len(set(map(tuple, one.tokens))) == len(PROMPTS)  # rows differ: a mix-up shows
    four = four_devices["meshes"][MESHES.index(mesh)]
    assert four["tokens"] == one.tokens and four["stop_reasons"] == one.stop_reasons


@pytest.mark.parametrize("mesh", MESHES, ids=lambda axes: f"data{axes[0]}-fsdp{axes[1]}")
def test_batch_cache_and_parameters_are_laid_out_on_the_mesh(mesh, four_devices):
    four = four_devices["meshes"][MESHES.index(mesh)]
    assert four["batch"] == 8  # 7 rows padded to 2 a device
    assert four["row_specs"] == [[["data", "fsdp"]]] * 3  # rows split over both axes
    assert four["cache_rows"] == [2]  # each device holds 2 of the 8 rows of the KV cache
    assert all(four["params_as_trainer"])
    assert (four["fsdp_params"] > 0) == (mesh[1] > 1)


def test_the_padded_batch_is_a_multiple_of_the_devices(four_devices):
    assert four_devices["devices"] == 4
    assert four_devices["batch_sizes"] == {"1": 4, "5": 8, "7": 8, "13": 16, "33": 40, "48": 48}


def test_the_trainer_generates_on_the_configured_mesh(four_devices):
    trainer = four_devices["trainer"]
    assert trainer["mesh"] == {"data": 2, "fsdp": 2} and trainer["fsdp_params"] > 0
    assert trainer["sharded"] == trainer["one_device"]
    assert trainer["log"] == [
        "[generate] 4 devices (cpu), batch 7 padded to 8 split 4 ways, "
        "parameters sharded 2 ways (fsdp)"
    ]


def test_one_device_keeps_the_single_device_program(tiny_model, caplog):
    model, tokenizer = tiny_model("tiny-gemma3")
    sampler = Sampler(model, tokenizer, make_mesh())
    assert sampler.mesh is None and sampler.ways == 1
    assert [sampler.batch_size(n) for n in (1, 7, 9, 48)] == [bucket(n) for n in (1, 7, 9, 48)]
    generator = JaxModel(ModelSpec("tiny-gemma3"), model, tokenizer, make_mesh())
    with caplog.at_level(logging.INFO, logger="tunix"):
        generator.generate(TEXTS[:3], max_new_tokens=2)
        generator.generate(TEXTS[3:6], max_new_tokens=2)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("[generate]")]
    assert lines == ["[generate] 1 device (cpu), batch 3"]
