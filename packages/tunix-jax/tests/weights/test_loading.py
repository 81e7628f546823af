import gguf
import jax.numpy as jnp
import numpy as np
import pytest

from tunix_core.errors import ConfigError
from tunix_jax.models.gemma.errors import (
    UnsupportedQuantizationError,
    WeightsNotFoundError,
    WeightsShapeError,
)
from tunix_jax.models.gemma.tokenizer import Tokenizer
from tunix_jax.weights.loading import load_model, parse_weights, save_orbax

TOKENS = jnp.array([[2, 40, 41, 300, 7, 8, 99, 120, 5, 6, 260, 31]], jnp.int32)
POSITIONS = jnp.arange(TOKENS.shape[1])[None]


def logits_of(model):
    return np.asarray(model(TOKENS, POSITIONS)[0])


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_orbax_round_trip_gives_identical_logits(preset, tmp_path, tiny_model):
    model, tokenizer = tiny_model(preset)
    save_orbax(model, tmp_path / "model" / "params")
    tokenizer.save(tmp_path / "model")
    loaded, loaded_tokenizer = load_model(preset, f"orbax:{tmp_path / 'model' / 'params'}")
    np.testing.assert_array_equal(logits_of(loaded), logits_of(model))
    assert loaded_tokenizer.model_proto == tokenizer.model_proto


def test_orbax_bfloat16_load(tmp_path, tiny_model):
    model, _ = tiny_model("tiny-gemma3")
    save_orbax(model, tmp_path / "params")
    loaded, _ = load_model("tiny-gemma3", f"orbax:{tmp_path / 'params'}", dtype=jnp.bfloat16)
    assert loaded.layers[0].attn.q_einsum.w[...].dtype == jnp.bfloat16
    assert np.abs(logits_of(loaded).astype(np.float32) - logits_of(model)).max() < 0.5


def test_gguf_weights_and_vocabulary_load(tmp_path, tiny_model, gguf_writer):
    model, tokenizer = tiny_model("tiny-gemma3", seed=4)
    path = gguf_writer(tmp_path / "tiny.gguf", model, tokenizer)
    loaded, loaded_tokenizer = load_model("tiny-gemma3", f"gguf:{path}")
    np.testing.assert_allclose(logits_of(loaded), logits_of(model), atol=1e-5)
    assert loaded_tokenizer.encode("<end_of_turn>") == [tokenizer.end_of_turn_id]


def test_missing_files_are_named(tmp_path):
    for weights in (
        f"gguf:{tmp_path}/none.gguf",
        f"orbax:{tmp_path}/none",
        f"safetensors:{tmp_path}/x",
    ):
        with pytest.raises(FileNotFoundError, match=r"none|x") as info:
            load_model("tiny-gemma3", weights)
        assert isinstance(info.value, ConfigError)
        assert str(tmp_path) in str(info.value)
    with pytest.raises(WeightsNotFoundError, match=r"config\.json"):
        load_model("tiny-gemma3", f"safetensors:{tmp_path}")
    with pytest.raises(ConfigError, match="unknown weights source"):
        parse_weights("hub:google/gemma")


def test_wrong_shape_names_file_and_tensor(tmp_path, tiny_model, gguf_writer):
    model, tokenizer = tiny_model("tiny-gemma3")
    tensors = gguf_writer.tensors(model)
    tensors["blk.2.attn_q.weight"] = tensors["blk.2.attn_q.weight"][:32]
    path = gguf_writer(tmp_path / "bad.gguf", model, tokenizer, tensors)
    with pytest.raises(WeightsShapeError, match=r"bad\.gguf.*'blk\.2\.attn_q\.weight'.*\(32, 64\)"):
        load_model("tiny-gemma3", f"gguf:{path}")
    del tensors["blk.2.attn_q.weight"]
    path = gguf_writer(tmp_path / "short.gguf", model, tokenizer, tensors)
    with pytest.raises(WeightsNotFoundError, match=r"short\.gguf.*'blk\.2\.attn_q\.weight'"):
        load_model("tiny-gemma3", f"gguf:{path}")
    good = gguf_writer(tmp_path / "good.gguf", model, tokenizer)
    with pytest.raises(ValueError, match=r"good\.gguf.*block_count=6.*gemma3-270m"):
        load_model("gemma3-270m", f"gguf:{good}")


def test_unsupported_quantisation_names_file_and_tensor(tmp_path, tiny_model, gguf_writer):
    model, tokenizer = tiny_model("tiny-gemma3")
    block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_K][1]
    raw = {
        "blk.0.ffn_up.weight": (
            np.zeros((32, block_bytes), np.uint8),
            gguf.GGMLQuantizationType.Q8_K,
        )
    }
    path = gguf_writer(tmp_path / "q8k.gguf", model, tokenizer, raw=raw)
    with pytest.raises(
        UnsupportedQuantizationError, match=r"q8k\.gguf.*'blk\.0\.ffn_up\.weight'.*Q8_K"
    ):
        load_model("tiny-gemma3", f"gguf:{path}")


QUANTISED_TYPES = ("Q8_0", "Q5_0", "Q4_0", "Q4_K", "Q6_K", "Q2_K", "IQ4_NL", "F16", "BF16")


def _f16_bytes(*values):
    return np.array(values, np.float16).view(np.uint8)


def _random_blocks(rng, qtype, rows, row):
    """Random bytes in `qtype`'s layout for rows x row values; its float16 block scales
    are set to finite numbers (random bytes would make some NaN)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    data = rng.integers(0, 256, (rows, row // block, size), dtype=np.uint8)
    if qtype.name.startswith(("Q8", "Q5", "Q4_0", "IQ4")):
        data[..., :2] = _f16_bytes(0.01)  # d leads the block
    elif qtype.name in ("Q4_K", "Q2_K"):  # d and dmin at bytes 0-3 (Q4_K), 80-83 (Q2_K)
        at = 0 if qtype.name == "Q4_K" else size - 4
        data[..., at : at + 4] = _f16_bytes(0.01, 0.002)
    elif qtype.name == "Q6_K":
        data[..., -2:] = _f16_bytes(0.01)  # d ends the block
    elif qtype.name == "F16":
        data = rng.normal(size=(rows, row)).astype(np.float16).view(np.uint8)
    elif qtype.name == "BF16":  # the upper halves of float32 numbers
        upper = rng.normal(size=(rows, row)).astype(np.float32).view(np.uint32) >> 16
        data = upper.astype(np.uint16).view(np.uint8)
    return data.reshape(rows, -1)


def test_gguf_tensors_are_decoded_as_gguf_reader_decodes_them(tmp_path, monkeypatch):
    # The loader parses the header itself and decodes many rows per call: every tensor
    # must come out bit for bit as gguf.GGUFReader + gguf.quants.dequantize give it.
    from tunix_jax.weights import gguf_io

    monkeypatch.setattr(gguf_io, "_DEQUANTIZE_CHUNK", 1000)  # several chunks per tensor
    rng = np.random.default_rng(0)
    path = tmp_path / "mixed.gguf"
    writer = gguf.GGUFWriter(str(path), arch="gemma3")
    writer.add_block_count(3)
    writer.add_token_list([f"piece{i}" for i in range(300)])
    writer.add_token_scores([float(i) for i in range(300)])
    writer.add_string("general.name", "mixed")
    writer.add_tensor("f32.weight", rng.normal(size=(5, 64)).astype(np.float32))
    for name in QUANTISED_TYPES:
        qtype = gguf.GGMLQuantizationType[name]
        writer.add_tensor(f"{name}.weight", _random_blocks(rng, qtype, 7, 512), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    tensors = gguf_io.GGUFTensors(path)
    assert tensors.fields["general.architecture"] == "gemma3"
    assert tensors.fields["gemma3.block_count"] == 3 and tensors.fields["general.name"] == "mixed"
    reader = gguf.GGUFReader(str(path))
    assert [t.name for t in reader.tensors] == list(tensors.tensors)
    for tensor in reader.tensors:
        want = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        got = gguf_io.dequantize(tensors, tensors.tensors[tensor.name])
        assert got.dtype == np.float32 and got.shape == want.shape, tensor.name
        assert np.isfinite(want).all(), tensor.name
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), tensor.name)


def test_gguf_metadata_reads_as_gguf_reader_reads_it(tmp_path):
    # The loader's own header parser reads the vocabulary (strings, scores, token types) and
    # every scalar as gguf.GGUFReader's contents() gives them.
    from tunix_jax.weights import gguf_io

    path = tmp_path / "metadata.gguf"
    writer = gguf.GGUFWriter(str(path), arch="gemma3")
    writer.add_tokenizer_model("llama")
    pieces = ["<pad>", "", " ", "\u2581the", "naïve", "日本語", "🙂", "<0x0A>", "a" * 300]
    writer.add_token_list(pieces)
    writer.add_token_scores([0.0, -1.5, 2.25, -1e30, 3.0, 0.125, -7.0, 1e-8, 42.0])
    writer.add_token_types([3, 1, 1, 1, 1, 4, 6, 6, 1])
    writer.add_bos_token_id(2)
    writer.add_add_space_prefix(False)
    writer.add_float64("test.double", 1 / 3)
    writer.add_int8("test.int8", -5)
    writer.add_uint64("test.uint64", 2**40 + 1)
    writer.add_array("test.bools", [True, False, True])
    writer.add_array("test.ints", [-(2**31), 0, 2**31 - 1])
    writer.add_tensor("f32.weight", np.ones((2, 32), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    ours = gguf_io.GGUFTensors(path).fields
    reader = gguf.GGUFReader(str(path)).fields
    assert set(ours) == set(reader) - {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}
    for key, value in ours.items():
        want = reader[key].contents()
        if isinstance(value, gguf_io.StringArray):
            value = value.decode()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        assert value == want and type(value) is type(want), key
    assert ours["tokenizer.ggml.tokens"].decode() == pieces


def test_not_a_gguf_file_is_named(tmp_path):
    path = tmp_path / "fake.gguf"
    path.write_bytes(b"GGML" + bytes(64))
    with pytest.raises(WeightsShapeError, match=r"fake\.gguf: not a GGUF file"):
        load_model("tiny-gemma3", f"gguf:{path}")


@pytest.mark.parametrize(("keep", "problem"), [(2000, "truncated GGUF header"),
                                               (-100, "runs past the file's end")])  # fmt: skip
def test_a_truncated_gguf_file_is_named(tmp_path, tiny_model, gguf_writer, keep, problem):
    model, tokenizer = tiny_model("tiny-gemma3")
    path = gguf_writer(tmp_path / "cut.gguf", model, tokenizer)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(WeightsShapeError, match=rf"cut\.gguf: .*{problem}"):
        load_model("tiny-gemma3", f"gguf:{path}")


def test_random_weights_are_seeded():
    a, tokenizer = load_model("tiny-gemma2", "random", seed=1)
    b, _ = load_model("tiny-gemma2", "random", seed=1)
    c, _ = load_model("tiny-gemma2", "random", seed=2)
    np.testing.assert_array_equal(logits_of(a), logits_of(b))
    assert not np.allclose(logits_of(a), logits_of(c))
    assert isinstance(tokenizer, Tokenizer) and tokenizer.vocab_size == 512
