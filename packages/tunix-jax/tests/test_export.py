"""The competition model export: files, fingerprint, probe and the round trip."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tunix_jax.export import (
    FULL_LOGITS_MAX_VOCAB,
    PROBE_PROMPT,
    PROBE_TOP_K,
    compare_probe,
    count_params,
    param_fingerprint,
    verify_model_dir,
    verify_with_google_tunix,
    write_model_dir,
)
from tunix_jax.model.loading import load_model, model_params


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
    assert not list(directory.rglob("*.safetensors"))
    meta = json.loads((directory / "model_config.json").read_text())
    assert meta["model_id"] == exported.model_id == "tiny-gemma3@random"
    assert (meta["preset"], meta["family"], meta["weights"], meta["dtype"]) == (
        "tiny-gemma3", "gemma3", "random", "float32"
    )  # fmt: skip
    assert meta["config"]["num_layers"] == 6 and meta["config"]["embed_dim"] == 64
    assert meta["num_params"] == exported.num_params == model.config.num_params()
    assert meta["fingerprint"] == exported.fingerprint == param_fingerprint(model_params(model))
    probe = json.loads((directory / "probe.json").read_text())
    assert probe["token_ids"] == tiny[1].encode(PROBE_PROMPT, add_bos=True)
    assert len(probe["logits"]) == 512 and probe["argmax"] == int(np.argmax(probe["logits"]))


def test_round_trip_reproduces_the_probe(exported):
    report = verify_model_dir(exported.directory)
    assert report.ok
    assert report.max_abs_diff == 0.0
    assert report.argmax_match and report.tokens_match and report.fingerprint_match
    assert report.logits_compared == 512
    assert report.to_dict()["ok"] is True


def test_fingerprint_tells_weights_apart(tiny):
    model, _ = tiny
    params = model_params(model)
    assert param_fingerprint(params) == param_fingerprint(model_params(model))
    changed = dict(params)
    changed["final_norm"] = {"scale": np.asarray(params["final_norm"]["scale"]) + 1e-3}
    assert param_fingerprint(changed) != param_fingerprint(params)
    assert count_params(changed) == count_params(params)


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
    from tunix_jax.export import _probe_record

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


@pytest.mark.compat
def test_google_tunix_loads_the_gemma3_export(exported):
    pytest.importorskip("tunix.models.gemma3.model")
    report = verify_with_google_tunix(Path(exported.directory))
    assert report.loader == "google-tunix Gemma3"
    assert report.ok, report.to_dict()


@pytest.mark.compat
def test_google_tunix_loads_the_gemma2_export(tmp_path):
    pytest.importorskip("tunix.models.gemma.model")
    model, tokenizer = load_model("tiny-gemma2", "random")
    export = write_model_dir(model, tokenizer, preset="tiny-gemma2", weights="random",
                             directory=tmp_path / "model")  # fmt: skip
    report = verify_with_google_tunix(export.directory)
    assert report.loader == "google-tunix Gemma"
    assert report.ok, report.to_dict()
