"""The competition model export: files, fingerprint, probe and the round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from tunix_jax.export.google_tunix import google_tunix_recipe
from tunix_jax.export.verifying import compare_probe, verify_model_dir, verify_with_google_tunix
from tunix_jax.export.writing import (
    FULL_LOGITS_MAX_VOCAB,
    PROBE_PROMPT,
    PROBE_TOP_K,
    count_params,
    param_fingerprint,
    probe_logits,
    write_model_dir,
)
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.params import upstream_shapes
from tunix_jax.weights.loading import load_model, model_params
from tunix_jax.weights.orbax_io import checkpoint_shapes


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-gemma3", "random", seed=0)


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    model, tokenizer = tiny
    directory = tmp_path_factory.mktemp("export") / "model"
    return write_model_dir(model, tokenizer, preset="tiny-gemma3", weights="random",
                           directory=directory)  # fmt: skip


def test_export_files_and_model_config(tiny, exported):
    model, _ = tiny
    directory = exported.directory
    assert sorted(p.name for p in directory.iterdir()) == [
        "model_config.json", "params", "probe.json", "tokenizer.model"
    ]  # fmt: skip
    # No safetensors (`tunix export --format hf` writes them on request): params/ is Orbax.
    assert list(directory.rglob("*.safetensors")) == []
    meta = json.loads((directory / "model_config.json").read_text())
    assert meta["model_id"] == exported.model_id == "tiny-gemma3@random"
    assert (meta["preset"], meta["family"], meta["weights"], meta["dtype"]) == (
        "tiny-gemma3", "gemma3", "random", "float32"
    )  # fmt: skip
    assert meta["config"]["num_layers"] == 6 and meta["config"]["embed_dim"] == 64
    assert meta["num_params"] == exported.num_params == model.config.num_params()
    assert meta["fingerprint"] == exported.fingerprint == param_fingerprint(model_params(model))
    assert meta["params_layout"] == "upstream" and meta["files"] == {
        "params": "params", "tokenizer": "tokenizer.model"
    }  # fmt: skip
    assert meta["google_tunix"] == google_tunix_recipe(model.config, "float32")
    probe = json.loads((directory / "probe.json").read_text())
    assert probe["token_ids"] == tiny[1].encode(PROBE_PROMPT, add_bos=True)
    assert len(probe["logits"]) == 512 and probe["argmax"] == int(np.argmax(probe["logits"]))
    assert probe["compute_dtype"] == "float32"


def test_params_are_in_the_upstream_layout(exported):
    shapes = checkpoint_shapes(exported.directory / "params")
    assert shapes == upstream_shapes(get_config("tiny-gemma3"))
    assert ("transformer/layer_0/mlp/gating_einsum", "w") in shapes


def test_google_tunix_recipe_of_the_stock_presets():
    assert google_tunix_recipe(get_config("gemma3-1b-it"), "float32")["code"] == [
        "import os, jax.numpy as jnp",
        "from tunix.models.gemma3 import model, params",
        'gemma = params.create_model_from_checkpoint(os.path.abspath("model/params"), '
        "model.ModelConfig.gemma3_1b_it(), dtype=jnp.float32)",
    ]
    assert google_tunix_recipe(get_config("gemma2-2b-it"), "bfloat16")["code"] == [
        "import os",
        "from tunix.models.gemma import model, params",
        "gemma = model.Gemma.from_params(params.load_and_format_params("
        "os.path.abspath(\"model/params\")), version='2-2b')",
    ]


def test_round_trip_reproduces_the_probe(exported):
    report = verify_model_dir(exported.directory)
    assert report.ok
    assert report.max_abs_diff == 0.0
    assert report.argmax_match and report.tokens_match and report.fingerprint_match
    assert report.logits_compared == 512
    assert report.to_dict()["ok"] is True


@pytest.mark.parametrize("precision", [{"dtype": jnp.bfloat16}, {"matmul_dtype": jnp.bfloat16}],
                         ids=["bf16-compute", "bf16-matmuls"])  # fmt: skip
def test_float32_weights_trained_in_bfloat16_are_probed_as_they_load(tiny, tmp_path, precision):
    """model.dtype float32 with trainer.options.compute_dtype bfloat16, or with
    model.options.matmul_dtype bfloat16: the export stores float32 weights, so the probe is
    computed in float32, as both loaders compute with them."""
    from flax import nnx

    from tunix_jax.models.gemma.transformer import Transformer

    model, tokenizer = tiny
    shell = nnx.eval_shape(lambda: Transformer(model.config, rngs=nnx.Rngs(0),
                                               param_dtype=jnp.float32, **precision))  # fmt: skip
    mixed = nnx.merge(nnx.split(shell)[0], nnx.state(model))
    export = write_model_dir(mixed, tokenizer, preset="tiny-gemma3", weights="random",
                             directory=tmp_path / "model")  # fmt: skip
    probe = json.loads((export.directory / "probe.json").read_text())
    assert probe["compute_dtype"] == "float32"
    report = verify_model_dir(export.directory)
    assert report.ok and report.max_abs_diff == 0.0, report.to_dict()
    # Recorded in bfloat16, the probe would fail this check (the bug this fixes).
    ids = probe["token_ids"]
    bf16 = probe_logits(mixed, ids)
    diff, tolerance, *_ = compare_probe(probe, bf16, dtype="float32")
    assert diff > tolerance


def test_lora_adapters_are_kept_beside_the_merged_weights(tmp_path):
    from flax import nnx

    from tunix_jax.training.lora import LoraAdapters, apply_lora, load_adapters, merge_lora

    targets = ("q_einsum", "gate_proj")
    model, tokenizer = load_model("tiny-gemma2", "random", seed=5)
    apply_lora(model, targets, rank=2, alpha=4.0, seed=1)
    # Trained adapters: B is no longer zero.
    rng = np.random.default_rng(0)
    for _, variable in nnx.iter_graph(model):
        if isinstance(variable, nnx.LoRAParam):
            variable[...] = jnp.asarray(rng.normal(0, 0.1, variable[...].shape), jnp.float32)
    adapters = LoraAdapters(nnx.to_pure_dict(nnx.state(model, nnx.LoRAParam)), rank=2,
                            alpha=4.0, targets=targets)  # fmt: skip
    merge_lora(model)
    export = write_model_dir(model, tokenizer, preset="tiny-gemma2", weights="random",
                             directory=tmp_path / "model", adapters=adapters)  # fmt: skip
    meta = json.loads((export.directory / "model_config.json").read_text())
    assert meta["files"]["adapters"] == "adapters"
    config = json.loads((export.directory / "adapters" / "adapter_config.json").read_text())
    assert (config["rank"], config["alpha"], config["targets"]) == (2, 4.0, list(targets))
    shapes = checkpoint_shapes(export.directory / "adapters" / "params")
    assert shapes[("layers", 3, "mlp", "gate_proj", "lora_b")] == (2, 128)
    assert {path[-1] for path in shapes} == {"lora_a", "lora_b"}

    base, _ = load_model("tiny-gemma2", "random", seed=5)
    assert load_adapters(base, export.directory / "adapters") == 2 * 4
    merge_lora(base)
    assert param_fingerprint(model_params(base)) == meta["fingerprint"]


def test_fingerprint_tells_weights_apart(tiny):
    model, _ = tiny
    params = model_params(model)
    assert param_fingerprint(params) == param_fingerprint(model_params(model))
    changed = dict(params)
    changed["final_norm"] = {"scale": np.asarray(params["final_norm"]["scale"]) + 1e-3}
    assert param_fingerprint(changed) != param_fingerprint(params)
    assert count_params(changed) == count_params(params)


def test_model_config_records_every_file_and_export_problems_checks_them(exported, tmp_path):
    from tunix_core.evidence import sha256_file
    from tunix_jax.export.verifying import export_problems

    meta = json.loads((exported.directory / "model_config.json").read_text())
    files = sorted(p for p in exported.directory.rglob("*") if p.is_file())
    assert meta["version"] == 3 and meta["file_digests"] == {
        p.relative_to(exported.directory).as_posix(): {"sha256": sha256_file(p),
                                                        "bytes": p.stat().st_size}
        for p in files if p.name != "model_config.json"
    }  # fmt: skip
    assert "params/_METADATA" in meta["file_digests"]
    copy = tmp_path / "model"
    shutil.copytree(exported.directory, copy)
    assert export_problems(copy) == []
    (copy / "phase.json").write_text("{}")  # the runner's record of a finished phase
    assert export_problems(copy) == []

    weights = max((p for p in (copy / "params").rglob("*") if p.is_file()),
                  key=lambda p: p.stat().st_size)  # fmt: skip
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 1
    weights.write_bytes(bytes(data))
    (copy / "tokenizer.model").write_bytes(b"short")
    (copy / "notes.txt").write_text("added later")
    where = f"{copy / 'model_config.json'} file_digests"
    assert export_problems(copy) == [
        f"{copy / 'notes.txt'}: not recorded in {where} (added after the export)",
        f"{weights}: sha256 differs from {where} (changed after the export)",
        f"{copy / 'tokenizer.model'}: 5 bytes, but {where} records "
        f"{meta['file_digests']['tokenizer.model']['bytes']:,} (changed after the export)",
    ]
    (copy / "notes.txt").unlink()
    config = json.loads((copy / "model_config.json").read_text())
    del config["file_digests"]
    (copy / "model_config.json").write_text(json.dumps(config))
    assert export_problems(copy) == [
        f"{where}: records no file digests, so the files of {copy} cannot be checked; "
        "export them again"
    ]


def test_round_trip_catches_swapped_weights(tiny, exported, tmp_path):
    other_model, tokenizer = load_model("tiny-gemma3", "random", seed=1)
    other = write_model_dir(other_model, tokenizer, preset="tiny-gemma3", weights="random",
                            directory=tmp_path / "other")  # fmt: skip
    swapped = tmp_path / "swapped"
    shutil.copytree(exported.directory, swapped)
    shutil.rmtree(swapped / "params")
    shutil.copytree(other.directory / "params", swapped / "params")
    report = verify_model_dir(swapped)
    assert not report.ok
    assert not report.fingerprint_match
    assert report.max_abs_diff > report.tolerance


def test_rewriting_an_export_replaces_it(tiny, tmp_path):
    model, tokenizer = tiny
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("from an earlier attempt")
    write_model_dir(model, tokenizer, preset="tiny-gemma3", weights="random", directory=target)
    assert not (target / "stale.txt").exists() and (target / "params").is_dir()
    assert not list(tmp_path.glob(".*export-tmp"))


def test_a_model_of_another_preset_is_refused(tiny, tmp_path):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="does not match preset 'tiny-gemma2'"):
        write_model_dir(model, tokenizer, preset="tiny-gemma2", weights="random",
                        directory=tmp_path / "m")  # fmt: skip


def test_large_vocabularies_keep_the_top_k_of_the_probe():
    from tunix_jax.export.writing import _probe_record

    rng = np.random.default_rng(0)
    logits = rng.normal(size=FULL_LOGITS_MAX_VOCAB * 4).astype(np.float32)
    record = _probe_record(logits)
    assert "logits" not in record and len(record["top_k"]["indices"]) == PROBE_TOP_K
    assert record["top_k"]["indices"][0] == record["argmax"] == int(np.argmax(logits))
    diff, _, argmax_match, compared, _ = compare_probe(record, logits, dtype="float32")
    assert diff == 0.0 and argmax_match and compared == PROBE_TOP_K
    shifted = logits.copy()
    shifted[record["argmax"]] -= 100.0
    diff, tolerance, argmax_match, compared, _ = compare_probe(record, shifted, dtype="float32")
    assert diff == pytest.approx(100.0) and diff > tolerance
    assert not argmax_match and compared == PROBE_TOP_K


def test_a_near_tie_for_the_top_token_may_break_either_way_in_a_lower_precision():
    from tunix_jax.export.writing import _probe_record

    logits = np.array([0.0, 5.0, 4.999, 1.0, -2.0], np.float32)
    record = _probe_record(logits)
    assert record["argmax"] == 1
    swapped = np.array([0.0, 4.999, 5.0, 1.0, -2.0], np.float32)  # within the tolerance
    _, tolerance, argmax_match, _, actual = compare_probe(record, swapped, dtype="bfloat16")
    assert actual == 2 and tolerance > 0.001 and argmax_match
    # A token whose recorded logit is far below the top is a real change.
    far = np.array([0.0, 5.0, 4.999, 5.5, -2.0], np.float32)
    _, tolerance, argmax_match, _, actual = compare_probe(record, far, dtype="bfloat16")
    assert actual == 3 and tolerance < 5.0 - 1.0 and not argmax_match


@pytest.mark.compat
def test_google_tunix_loads_the_gemma3_export(exported):
    pytest.importorskip("tunix.models.gemma3.model")
    report = verify_with_google_tunix(Path(exported.directory))
    assert report.loader.startswith("google-tunix gemma3.params.create_model_from_checkpoint")
    assert report.ok, report.to_dict()


@pytest.mark.compat
def test_google_tunix_loads_the_gemma2_export(tmp_path):
    pytest.importorskip("tunix.models.gemma.model")
    model, tokenizer = load_model("tiny-gemma2", "random")
    export = write_model_dir(model, tokenizer, preset="tiny-gemma2", weights="random",
                             directory=tmp_path / "model")  # fmt: skip
    report = verify_with_google_tunix(export.directory)
    assert report.loader.startswith("google-tunix module_from_linen_variables")
    assert report.ok, report.to_dict()
