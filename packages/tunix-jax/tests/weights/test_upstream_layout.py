"""The upstream layout of Google's Flax Gemma checkpoints: keys, the round trip through
our own loader, Kaggle's folders, Gemma 2's padded vocabulary, and the messages bad
checkpoints get."""

from __future__ import annotations

import dataclasses
import logging
import re
import shutil

import jax.numpy as jnp
import numpy as np
import pytest

from tunix_core.errors import ConfigError
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.errors import (
    WeightsDamagedError,
    WeightsNotFoundError,
    WeightsShapeError,
)
from tunix_jax.models.gemma.params import (
    SourceTensor,
    check_layout,
    expected_shapes,
    from_upstream,
    layout_problems,
    path_str,
    to_upstream,
    upstream_shapes,
)
from tunix_jax.weights import orbax_io
from tunix_jax.weights.loading import load_model, model_params, save_orbax

TOKENS = jnp.array([[2, 40, 41, 300, 7, 8, 99, 120, 5, 6, 260, 31]], jnp.int32)
POSITIONS = jnp.arange(TOKENS.shape[1])[None]


def logits_of(model):
    return np.asarray(model(TOKENS, POSITIONS)[0])


def test_upstream_keys_and_shapes_are_those_of_googles_checkpoints():
    # As listed in google-tunix's gemma3/params.py for Gemma 3 1B, and gemma/params.py's
    # Gemma 2 2B (256,128 embedding rows, gating einsum [2, D, F]).
    gemma3 = upstream_shapes(get_config("gemma3-1b"))
    assert gemma3[("transformer/embedder", "input_embedding")] == (262144, 1152)
    assert gemma3[("transformer/layer_0/attn/kv_einsum", "w")] == (2, 1, 1152, 256)
    assert gemma3[("transformer/layer_0/attn/q_einsum", "w")] == (4, 1152, 256)
    assert gemma3[("transformer/layer_0/attn/_query_norm", "scale")] == (256,)
    assert gemma3[("transformer/layer_0/mlp/gating_einsum", "w")] == (2, 6912, 1152)
    assert gemma3[("transformer/layer_0/mlp/linear", "w")] == (6912, 1152)
    assert gemma3[("transformer/layer_25/post_attention_norm", "scale")] == (1152,)
    assert len(gemma3) == 2 + 26 * 11
    gemma2 = upstream_shapes(get_config("gemma2-2b-it"))
    assert gemma2[("transformer/embedder", "input_embedding")] == (256128, 2304)
    assert gemma2[("transformer/layer_0/mlp/gating_einsum", "w")] == (2, 2304, 9216)
    assert gemma2[("transformer/layer_0/post_attention_norm", "scale")] == (2304,)
    assert not any("_query_norm" in module or "post_attn_norm" in module for module, _ in gemma2)
    assert len(gemma2) == 2 + 26 * 9


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_upstream_checkpoint_round_trip_through_our_loader(preset, tmp_path, tiny_model):
    model, _ = tiny_model(preset)
    save_orbax(model, tmp_path / "params")
    shapes = orbax_io.checkpoint_shapes(tmp_path / "params")
    assert shapes == upstream_shapes(model.config)
    loaded, _ = load_model(preset, f"orbax:{tmp_path / 'params'}")
    np.testing.assert_array_equal(logits_of(loaded), logits_of(model))


def test_the_module_layout_still_loads(tmp_path, tiny_model):
    model, _ = tiny_model("tiny-gemma2")
    orbax_io.save_params(model_params(model), tmp_path / "params")
    assert ("layers", 0, "post_attn_norm", "scale") in orbax_io.checkpoint_shapes(
        tmp_path / "params"
    )
    loaded, _ = load_model("tiny-gemma2", f"orbax:{tmp_path / 'params'}")
    np.testing.assert_array_equal(logits_of(loaded), logits_of(model))


def test_kaggles_version_folder_or_its_checkpoint_folder(tmp_path, tiny_model, caplog):
    # Kaggle: .../flax/gemma3-1b-it/1/ holds gemma3-1b-it/ (Orbax) and tokenizer.model.
    model, tokenizer = tiny_model("tiny-gemma3", seed=3)
    version = tmp_path / "flax" / "tiny-gemma3" / "1"
    save_orbax(model, version / "tiny-gemma3")
    tokenizer.save(version)
    caplog.set_level(logging.WARNING)
    caplog.clear()  # the random model's own byte-level tokenizer warned
    for folder in (version, version / "tiny-gemma3"):
        loaded, loaded_tokenizer = load_model("tiny-gemma3", f"orbax:{folder}")
        np.testing.assert_array_equal(logits_of(loaded), logits_of(model))
        assert loaded_tokenizer.model_proto == tokenizer.model_proto
    assert "no tokenizer found" not in caplog.text
    save_orbax(model, version / "another")
    with pytest.raises(WeightsNotFoundError, match=r"1: several Orbax checkpoints \(another, tiny"):
        load_model("tiny-gemma3", f"orbax:{version}")


def test_gemma2_padding_rows_are_dropped_on_load_and_zeros_on_export(tmp_path, tiny_model):
    # gemma2-2b: Google's checkpoints have 256,128 rows for the tokenizer's 256,000 ids.
    config = dataclasses.replace(get_config("tiny-gemma2"), upstream_vocab_size=520)
    model, _ = tiny_model("tiny-gemma2")
    params = model_params(model)
    table = np.asarray(params["embedder"]["input_embedding"])
    upstream = to_upstream(params, config)
    padded = upstream["transformer/embedder"]["input_embedding"]
    assert padded.shape == (520, 64) and not padded[512:].any()
    np.testing.assert_array_equal(padded[:512], table)

    orbax_io.save_params(upstream, tmp_path / "padded")
    loaded = orbax_io.read_params(tmp_path / "padded", config)
    np.testing.assert_array_equal(loaded[("embedder", "input_embedding")].value, table)
    # A checkpoint without the padding rows (converted from Hugging Face) loads as well.
    orbax_io.save_params(to_upstream(params, get_config("tiny-gemma2")), tmp_path / "plain")
    plain = orbax_io.read_params(tmp_path / "plain", config)
    assert set(plain) == set(loaded) == set(expected_shapes(config))
    for path, tensor in plain.items():
        np.testing.assert_array_equal(tensor.value, loaded[path].value, err_msg=path_str(path))
    with pytest.raises(WeightsShapeError, match=r"'transformer/embedder/input_embedding' has "
                       r"shape \(520, 64\), but model preset 'tiny-gemma2' expects \(512, 64\)"):  # fmt: skip
        orbax_io.read_params(tmp_path / "padded", get_config("tiny-gemma2"))


def test_from_upstream_names_the_source_tensors():
    config = get_config("tiny-gemma3")
    flat = {key: SourceTensor(path_str(key), np.zeros(shape, np.float32))
            for key, shape in upstream_shapes(config).items()}  # fmt: skip
    converted = from_upstream(flat, config)
    assert converted[("layers", 1, "mlp", "up_proj", "kernel")].name == (
        "transformer/layer_1/mlp/gating_einsum/w[1]"
    )
    assert converted[("layers", 1, "mlp", "down_proj", "kernel")].name == (
        "transformer/layer_1/mlp/linear/w"
    )


def test_a_1b_checkpoint_under_the_270m_preset_names_tensor_and_shapes():
    found = upstream_shapes(get_config("gemma3-1b"))
    with pytest.raises(WeightsShapeError) as info:
        check_layout(found, get_config("gemma3-270m"), "upstream", "/kaggle/gemma3-1b-it")
    assert str(info.value) == (
        "/kaggle/gemma3-1b-it: tensor 'transformer/embedder/input_embedding' has shape "
        "(262144, 1152), but model preset 'gemma3-270m' expects (262144, 640); it has 26 "
        "layers, the preset 18"
    )
    gemma2 = upstream_shapes(get_config("gemma2-2b"))
    problems = layout_problems(gemma2, get_config("gemma3-1b"), "upstream")
    assert problems[0][1] == (
        "tensor 'transformer/embedder/input_embedding' has shape (256128, 2304), but model "
        "preset 'gemma3-1b' expects (262144, 1152)"
    )


def test_a_larger_checkpoint_on_disk_is_refused_before_reading_it(tmp_path):
    import jax
    from flax import nnx

    from tunix_jax.models.gemma.transformer import Transformer

    wider = dataclasses.replace(get_config("tiny-gemma3"), embed_dim=96)
    shell = nnx.eval_shape(lambda: Transformer(wider, rngs=nnx.Rngs(0)))
    params = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), model_params(shell))
    orbax_io.save_upstream(params, wider, tmp_path / "wide")
    with pytest.raises(WeightsShapeError) as info:
        load_model("tiny-gemma3", f"orbax:{tmp_path / 'wide'}")
    assert str(info.value) == (
        f"{tmp_path / 'wide'}: tensor 'transformer/embedder/input_embedding' has shape "
        "(512, 96), but model preset 'tiny-gemma3' expects (512, 64)"
    )


def test_a_gemma2_checkpoint_under_a_gemma3_preset(tmp_path, tiny_model):
    model, _ = tiny_model("tiny-gemma2")
    save_orbax(model, tmp_path / "gemma2")
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("tiny-gemma3", f"orbax:{tmp_path / 'gemma2'}")
    assert str(info.value) == (
        f"{tmp_path / 'gemma2'}: tensor 'transformer/layer_0/attn/_query_norm/scale' is missing "
        "(model preset 'tiny-gemma3' expects shape (16,)); the checkpoint has no query/key "
        "norms, like Gemma 2, but preset 'tiny-gemma3' is Gemma 3; it has 4 layers, the preset 6"
    )


@pytest.mark.parametrize("damage", ["delete", "truncate"])
def test_a_half_written_checkpoint_names_folder_and_tensor(damage, tmp_path, tiny_model):
    model, _ = tiny_model("tiny-gemma3")
    save_orbax(model, tmp_path / "params")
    # The array data: OCDBT files named by hash, the largest holding most arrays.
    data = sorted((tmp_path / "params").glob("ocdbt.process_*/d/*"), key=lambda f: f.stat().st_size)
    if damage == "delete":
        data[-1].unlink()
    else:
        for file in data:
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    with pytest.raises(WeightsDamagedError) as info:
        load_model("tiny-gemma3", f"orbax:{tmp_path / 'params'}")
    message = str(info.value)
    assert "\n" not in message
    match = re.fullmatch(
        rf"{re.escape(str(tmp_path / 'params'))}: tensor '(transformer/[^']+)' \(shape "
        r"\(.+\)\) cannot be read, the checkpoint is incomplete or damaged: .+",
        message,
    )
    assert match, message
    module, _, name = match.group(1).rpartition("/")
    shape = upstream_shapes(get_config("tiny-gemma3"))[(module, name)]
    assert f"(shape {shape})" in message


def test_missing_metadata_and_empty_or_foreign_folders(tmp_path, tiny_model):
    model, _ = tiny_model("tiny-gemma3")
    save_orbax(model, tmp_path / "params")
    metadata = tmp_path / "params" / "_METADATA"
    metadata.write_bytes(metadata.read_bytes()[:100])
    with pytest.raises(WeightsDamagedError, match=r"params: incomplete Orbax checkpoint: its "
                       r"_METADATA is missing or damaged \(Unterminated string"):  # fmt: skip
        load_model("tiny-gemma3", f"orbax:{tmp_path / 'params'}")
    metadata.unlink()  # a checkpoint whose writer died before its last file
    with pytest.raises(WeightsDamagedError, match=r"_METADATA is missing or damaged \(Metadata "
                       r"file \(named _METADATA\) does not exist"):  # fmt: skip
        load_model("tiny-gemma3", f"orbax:{tmp_path / 'params'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsNotFoundError, match=r"empty: no Orbax checkpoint here or in a "
                       r"subfolder \(none holds _METADATA or "):  # fmt: skip
        load_model("tiny-gemma3", f"orbax:{tmp_path / 'empty'}")
    orbax_io.save_params({"encoder": {"w": np.zeros(3)}, "head": {"b": np.zeros(2)}},
                         tmp_path / "other")  # fmt: skip
    with pytest.raises(WeightsNotFoundError) as info:
        load_model("tiny-gemma3", f"orbax:{tmp_path / 'other'}")
    assert str(info.value) == (
        f"{tmp_path / 'other'}: not a Gemma checkpoint: expected keys like "
        "'transformer/embedder' (upstream layout) or 'embedder' and 'layers' (module layout), "
        "found 'encoder', 'head'"
    )


def test_run_validation_reads_only_the_metadata(tmp_path, tiny_model):
    from tunix_core.protocols import ModelSpec
    from tunix_jax.backend import JaxBackend

    model, _ = tiny_model("tiny-gemma2")
    save_orbax(model, tmp_path / "params")
    shutil.rmtree(next((tmp_path / "params").glob("ocdbt.process_*")))  # the arrays
    JaxBackend().validate(ModelSpec("tiny-gemma2", f"orbax:{tmp_path}"))
    bad = ModelSpec("tiny-gemma3", f"orbax:{tmp_path}")
    with pytest.raises(ConfigError, match=r"^model\.weights: .*params: tensor 'transformer/"
                       r"layer_0/attn/_query_norm/scale' is missing"):  # fmt: skip
        JaxBackend().validate(bad)
