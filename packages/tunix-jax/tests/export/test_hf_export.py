"""The Hugging Face export reads back with our loader and, with transformers, computes our logits."""

import dataclasses
import json

import numpy as np
import pytest

from tunix_jax.export.hf_export import hf_config, write_hf_checkpoint
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.errors import WeightsNotFoundError, WeightsShapeError
from tunix_jax.models.gemma.params import SourceTensor, build_tree, expected_shapes
from tunix_jax.models.gemma.tokenizer import Tokenizer, byte_level_proto

TOKENS = [[2, 17, 300, 42, 9, 77, 123, 64, 31, 250, 8, 99, 400, 5, 6, 7, 301, 302, 11, 12]]


def random_params(config, seed: int = 0):
    """A nested Tunix-layout tree with every tensor random, norm scales included (zero
    norms would hide a 1 + w mistake)."""
    rng = np.random.default_rng(seed)
    flat = {
        path: SourceTensor(
            "random", rng.normal(0.0, 0.3 if path[-1] == "scale" else 0.1, shape).astype(np.float32)
        )
        for path, shape in expected_shapes(config).items()
    }
    return build_tree(flat, config, "random")


def leaves(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), np.asarray(value)


def tokenizer_for(config):
    return Tokenizer(byte_level_proto(config.vocab_size))


# A fused QKV (as many KV heads as query heads) and linearly scaled global RoPE (Gemma 3 4B+).
FUSED_SCALED = dataclasses.replace(
    get_config("tiny-gemma3"), name="tiny-gemma3-fused", num_kv_heads=4, global_rope_scale=8.0
)


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_load_model_reads_back_identical_parameters(preset, tmp_path):
    from tunix_jax.weights.loading import load_model, model_params

    config = get_config(preset)
    params = random_params(config)
    tokenizer = tokenizer_for(config)
    out = write_hf_checkpoint(params, config, tokenizer, tmp_path / "hf")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.model",
        "tokenizer_config.json",
    ]
    model, loaded_tokenizer = load_model(preset, f"safetensors:{out}")
    loaded = dict(leaves(model_params(model)))
    original = dict(leaves(params))
    assert loaded.keys() == original.keys()
    for path, value in original.items():
        np.testing.assert_array_equal(loaded[path], value, err_msg=str(path))
    assert loaded_tokenizer.model_proto == tokenizer.model_proto


def test_fused_qkv_reads_back_identical(tmp_path):
    from tunix_jax.weights.safetensors_io import read_params

    params = random_params(FUSED_SCALED, seed=3)
    assert "qkv_einsum" in params["layers"][0]["attn"]
    out = write_hf_checkpoint(params, FUSED_SCALED, tokenizer_for(FUSED_SCALED), tmp_path)
    tree = build_tree(read_params(out, FUSED_SCALED), FUSED_SCALED, str(out))
    for path, value in leaves(params):
        got = tree
        for part in path:
            got = got[part]
        np.testing.assert_array_equal(got, value, err_msg=str(path))


def test_bfloat16_export_rounds_each_tensor(tmp_path):
    import jax.numpy as jnp
    from safetensors import safe_open

    config = get_config("tiny-gemma2")
    params = random_params(config, seed=1)
    write_hf_checkpoint(params, config, tokenizer_for(config), tmp_path, dtype="bfloat16")
    with safe_open(tmp_path / "model.safetensors", framework="flax") as handle:
        embedding = handle.get_tensor("model.embed_tokens.weight")
    assert embedding.dtype == jnp.bfloat16
    expected = params["embedder"]["input_embedding"].astype(jnp.bfloat16)
    np.testing.assert_array_equal(np.asarray(embedding), expected)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"


def test_config_json_describes_the_architecture():
    g3 = get_config("gemma3-270m")
    tokenizer = tokenizer_for(dataclasses.replace(g3, vocab_size=512))
    data = hf_config(dataclasses.replace(g3, vocab_size=512), tokenizer)
    assert data["architectures"] == ["Gemma3ForCausalLM"]
    assert data["model_type"] == "gemma3_text"
    assert data["layer_types"][:6] == ["sliding_attention"] * 5 + ["full_attention"]
    assert len(data["layer_types"]) == 18 and data["sliding_window"] == 512
    assert data["rope_parameters"] == {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
        "full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
    }
    assert (data["rope_theta"], data["rope_local_base_freq"], data["rope_scaling"]) == (
        1_000_000.0,
        10_000.0,
        None,
    )
    assert data["query_pre_attn_scalar"] == 256 and isinstance(data["query_pre_attn_scalar"], int)
    assert (data["head_dim"], data["num_key_value_heads"], data["tie_word_embeddings"]) == (
        256,
        1,
        True,
    )
    assert (data["bos_token_id"], data["eos_token_id"], data["pad_token_id"]) == (2, 1, 0)

    scaled = hf_config(FUSED_SCALED, tokenizer)
    assert scaled["rope_parameters"]["full_attention"] == {
        "rope_type": "linear",
        "factor": 8.0,
        "rope_theta": 1_000_000.0,
    }
    assert scaled["rope_scaling"] == {"rope_type": "linear", "factor": 8.0}

    g2 = hf_config(get_config("tiny-gemma2"), tokenizer)
    assert g2["architectures"] == ["Gemma2ForCausalLM"] and g2["model_type"] == "gemma2"
    assert g2["layer_types"] == ["sliding_attention", "full_attention"] * 2
    assert (g2["attn_logit_softcapping"], g2["final_logit_softcapping"]) == (50.0, 30.0)
    assert g2["rope_parameters"] == {"rope_type": "default", "rope_theta": 10_000.0}


def test_unrepresentable_or_mismatched_inputs_are_refused(tmp_path):
    config = get_config("tiny-gemma2")
    tokenizer = tokenizer_for(config)
    with pytest.raises(ValueError, match="one RoPE for every layer"):
        hf_config(dataclasses.replace(config, local_rope_base=5_000.0), tokenizer)
    with pytest.raises(ValueError, match=r"600 pieces.*vocab_size=512"):
        hf_config(config, Tokenizer(byte_level_proto(600)))
    params = random_params(config)
    with pytest.raises(ValueError, match="dtype must be one of"):
        write_hf_checkpoint(params, config, tokenizer, tmp_path / "a", dtype="int8")
    del params["layers"][3]["mlp"]["up_proj"]
    with pytest.raises(WeightsNotFoundError, match="layers/3/mlp/up_proj/kernel"):
        write_hf_checkpoint(params, config, tokenizer, tmp_path / "b")
    params = random_params(config)
    params["layers"][1]["attn"]["q_einsum"]["w"] = np.zeros((4, 64, 8), np.float32)
    with pytest.raises(WeightsShapeError, match=r"layers/1/attn/q_einsum/w.*\(4, 64, 8\)"):
        write_hf_checkpoint(params, config, tokenizer, tmp_path / "c")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "old.safetensors").write_bytes(b"")
    with pytest.raises(FileExistsError, match="not empty"):
        write_hf_checkpoint(random_params(config), config, tokenizer, tmp_path / "d")


def our_logits(config, params, tokens):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from tunix_jax.models.gemma.transformer import Transformer

    model = nnx.eval_shape(lambda: Transformer(config, rngs=nnx.Rngs(0)))
    nnx.update(model, jax.tree.map(jnp.asarray, params))
    tokens = np.asarray(tokens, np.int32)
    logits, _ = model(tokens, np.arange(tokens.shape[1])[None])
    return np.asarray(logits)


def transformers_logits(directory, tokens):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        str(directory), dtype=torch.float32, output_loading_info=True
    )
    # Every tensor written is used and none is missing (the LM head is the tied embedding).
    assert not any(info.values()), info
    model.eval()
    with torch.no_grad():
        return model(torch.tensor(tokens)).logits.numpy(), model


@pytest.mark.heavy
@pytest.mark.parametrize(
    "config",
    [get_config("tiny-gemma3"), get_config("tiny-gemma2"), FUSED_SCALED],
    ids=lambda config: config.name,
)
def test_transformers_loads_the_export_with_our_logits(config, tmp_path):
    params = random_params(config, seed=7)
    write_hf_checkpoint(params, config, tokenizer_for(config), tmp_path)
    expected, model = transformers_logits(tmp_path, TOKENS)
    assert type(model).__name__ == f"{config.family.capitalize()}ForCausalLM"
    assert len(TOKENS[0]) > config.sliding_window
    got = our_logits(config, params, TOKENS)
    print(f"{config.name}: max |logit diff| = {np.abs(got - expected).max():.3g}")
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.heavy
def test_auto_tokenizer_loads_the_export_offline(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = get_config("tiny-gemma3")
    tokenizer = tokenizer_for(config)
    write_hf_checkpoint(random_params(config), config, tokenizer, tmp_path)
    hf = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in ["<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n", "  tabs\t🙂 日本語"]:
        ids = tokenizer.encode(text, add_bos=True)
        assert hf(text)["input_ids"] == ids
        assert hf.decode(ids, skip_special_tokens=True) == text


@pytest.mark.heavy
def test_real_gemma3_270m_export_matches_transformers(tmp_path):
    """The default weights (Gemma 3 270M, dequantised) through transformers."""
    from tunix_jax.weights.loading import load_model, model_params

    model, tokenizer = load_model("gemma3-270m", "default")
    write_hf_checkpoint(model_params(model), model.config, tokenizer, tmp_path)
    prompt = "<start_of_turn>user\nWhat is 17 + 25?<end_of_turn>\n<start_of_turn>model\n"
    tokens = [tokenizer.encode(prompt, add_bos=True)]
    logits, _ = model(np.asarray(tokens, np.int32), np.arange(len(tokens[0]))[None])
    del model
    expected, _ = transformers_logits(tmp_path, tokens)
    got = np.asarray(logits)
    diff = np.abs(got - expected).max()
    print(
        f"gemma3-270m: max |logit diff| = {diff:.3g} (largest |logit| {np.abs(expected).max():.3g})"
    )
    assert diff < 1e-3
    assert (got[0, -1].argmax(), got.argmax(-1).tolist()) == (
        expected[0, -1].argmax(),
        expected.argmax(-1).tolist(),
    )
    transformers = pytest.importorskip("transformers")
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    assert hf_tokenizer(prompt)["input_ids"] == tokens[0]
