"""`tunix export RUN --format hf|gguf|orbax`, through the `tunix` Click host and the plugin."""

import json

import numpy as np
import pytest

from tunix_core.rundir import RunDirectory


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run whose train stage wrote model/ (a tiny model with random weights and norms)."""
    import jax.numpy as jnp
    from flax import nnx

    from tunix_jax.export.writing import write_model_dir
    from tunix_jax.models.gemma.layers import RMSNorm
    from tunix_jax.weights.loading import load_model

    model, tokenizer = load_model("tiny-gemma3", "random", seed=3)
    rng = np.random.default_rng(3)
    for _, module in nnx.iter_graph(model):
        if isinstance(module, RMSNorm):
            module.scale[...] = jnp.asarray(rng.normal(0, 0.5, module.scale[...].shape))
    run = RunDirectory.create(
        tmp_path_factory.mktemp("runs"),
        "tiny",
        model_id="tiny-gemma3@random",
        dataset="dev-reasoning-v2",
        trainer="jax",
        config_path=None,
        command=["tunix", "run"],
    )
    write_model_dir(
        model, tokenizer, preset="tiny-gemma3", weights="random", directory=run.model_dir
    )
    return run.path


@pytest.mark.parametrize(
    ("fmt", "dtype", "loader"),
    [
        ("hf", "float32", "safetensors:{}"),
        ("hf", "bfloat16", "safetensors:{}"),
        ("gguf", "float16", "gguf:{}"),
        ("orbax", "float32", "orbax:{}/params"),
    ],
)
def test_export_writes_a_model_that_reproduces_the_probe(
    tunix, trained_run, tmp_path, fmt, dtype, loader
):
    from tunix_jax.export.writing import probe_logits, read_export_meta
    from tunix_jax.weights.loading import load_model

    out = tmp_path / f"out.{fmt}"
    result = tunix("export", trained_run, "--format", fmt, "--out", out, "--dtype", dtype)
    assert result.exit_code == 0, result.output
    assert f"wrote {fmt} ({dtype}) to {out}" in result.output
    assert "max |probe logit diff|" in result.output
    _, probe = read_export_meta(trained_run / "model")
    model, _ = load_model("tiny-gemma3", loader.format(out))
    logits = probe_logits(model, probe["token_ids"])
    atol = 1e-4 if dtype == "float32" else 0.2
    np.testing.assert_allclose(logits, probe["logits"], atol=atol, rtol=0)
    if fmt == "hf":
        assert json.loads((out / "config.json").read_text())["torch_dtype"] == dtype


def test_export_defaults_to_the_run_folder_and_refuses_to_overwrite(tunix, trained_run):
    result = tunix("export", trained_run, "--format", "gguf", "--no-verify")
    target = trained_run / "exports" / "model.gguf"
    assert result.exit_code == 0, result.output
    assert target.is_file() and "max |probe" not in result.output
    again = tunix("export", trained_run, "--format", "gguf")
    assert again.exit_code != 0 and "already exists" in again.output
    wrong = tunix("export", trained_run, "--format", "gguf", "--dtype", "bfloat16", "--out", "x")
    assert wrong.exit_code != 0 and "gguf supports float32, float16, not bfloat16" in wrong.output


def test_export_records_the_digests_of_what_it_wrote(tunix, trained_run, tmp_path):
    from tunix_core.evidence import sha256_file

    out = tmp_path / "hf"
    assert tunix("export", trained_run, "--format", "hf", "--out", out).exit_code == 0
    record = json.loads((tmp_path / "hf.export.json").read_text())
    meta = json.loads((trained_run / "model" / "model_config.json").read_text())
    assert (record["format"], record["dtype"]) == ("hf", "float32")
    assert record["source_fingerprint"] == meta["fingerprint"]
    weights = out / "model.safetensors"
    assert record["files"]["model.safetensors"] == {
        "sha256": sha256_file(weights), "bytes": weights.stat().st_size
    }  # fmt: skip
    assert set(record["files"]) == {p.name for p in out.iterdir()}
    gguf = tmp_path / "m.gguf"
    assert tunix("export", trained_run, "--format", "gguf", "--out", gguf).exit_code == 0
    assert set(json.loads((tmp_path / "m.gguf.export.json").read_text())["files"]) == {"m.gguf"}


def test_export_refuses_an_out_inside_the_run_but_outside_exports(tunix, trained_run, tmp_path):
    link = tmp_path / "to-model"
    link.symlink_to(trained_run / "model")
    for out in (trained_run / "model" / "hf", link / "hf", trained_run / "data" / "hf"):
        result = tunix("export", trained_run, "--format", "hf", "--out", out)
        assert result.exit_code == 2
        assert f"{out} lies inside the run directory {trained_run}; write the export under" in (
            result.output
        )
    assert not (trained_run / "model" / "hf").exists()


def test_export_fails_when_the_export_does_not_reproduce_the_probe(tunix, trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    probe_path = run / "model" / "probe.json"
    probe = json.loads(probe_path.read_text())
    probe["logits"] = [value + 1.0 for value in probe["logits"]]
    probe_path.write_text(json.dumps(probe))
    result = tunix("export", run, "--format", "hf", "--out", tmp_path / "hf")
    assert result.exit_code != 0
    assert "does not reproduce the run's probe" in result.output


def test_a_run_without_a_model_is_refused(tunix, tmp_path):
    run = RunDirectory.create(
        tmp_path,
        "untrained",
        model_id="tiny-gemma3@random",
        dataset="dev-reasoning-v2",
        trainer="jax",
        config_path=None,
        command=["tunix", "run"],
    )
    result = tunix("export", run.path, "--format", "hf")
    assert result.exit_code != 0 and "no finished model export" in result.output


def test_export_is_registered_lazily(tunix):
    result = tunix("--help")
    assert result.exit_code == 0 and "export" in result.output
    assert "Hugging Face" in tunix("export", "--help").output
