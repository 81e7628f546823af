"""The GGUF export reads back with our loader, the `gguf` package and transformers."""

import dataclasses

import numpy as np
import pytest

from tunix_jax.export.gguf_export import write_gguf
from tunix_jax.weights.loading import load_model, model_params

TOKENS = np.asarray(
    [[2, 17, 300, 42, 9, 77, 123, 64, 31, 250, 8, 99, 400, 5, 6, 7, 4, 5]], np.int32
)
TEXTS = ["<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n", "  tabs\t🙂 ∑"]


def logits_of(model, tokens=TOKENS):
    return np.asarray(model(tokens, np.arange(tokens.shape[1])[None])[0])


def leaves(tree, prefix=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaves(value, (*prefix, key))
        else:
            yield (*prefix, key), np.asarray(value, np.float32)


def pieces(tokenizer):
    from sentencepiece import sentencepiece_model_pb2 as sp_model

    proto = sp_model.ModelProto.FromString(tokenizer.model_proto)
    return [(p.piece, p.score, p.type) for p in proto.pieces]


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_load_model_reads_back_weights_and_vocabulary(preset, tmp_path, tiny_model):
    model, tokenizer = tiny_model(preset, seed=2)
    path = write_gguf(model_params(model), model.config, tokenizer, tmp_path / "out.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.gguf"]
    loaded, loaded_tokenizer = load_model(preset, f"gguf:{path}")
    # Norms go through 1 + w and back, which rounds in float32; the rest is exact.
    original = dict(leaves(model_params(model)))
    for key, value in leaves(model_params(loaded)):
        atol = 1e-6 if key[-1] == "scale" else 0.0
        np.testing.assert_allclose(value, original[key], atol=atol, rtol=0, err_msg=str(key))
    np.testing.assert_allclose(logits_of(loaded), logits_of(model), atol=1e-5, rtol=0)
    assert pieces(loaded_tokenizer) == pieces(tokenizer)
    for text in TEXTS:
        assert loaded_tokenizer.encode(text, add_bos=True) == tokenizer.encode(text, add_bos=True)


def test_float16_keeps_norms_in_float32(tmp_path, tiny_model):
    import gguf

    model, tokenizer = tiny_model("tiny-gemma3", seed=5)
    path = write_gguf(
        model_params(model), model.config, tokenizer, tmp_path / "h.gguf", dtype="float16"
    )
    reader = gguf.GGUFReader(str(path))
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["blk.0.attn_q.weight"] == kinds["token_embd.weight"] == "F16"
    assert kinds["blk.0.attn_q_norm.weight"] == kinds["output_norm.weight"] == "F32"
    assert reader.fields["general.file_type"].contents() == gguf.LlamaFileType.MOSTLY_F16
    loaded, _ = load_model("tiny-gemma3", f"gguf:{path}")
    q = np.asarray(model.layers[3].attn.q_einsum.w[...])
    np.testing.assert_array_equal(
        np.asarray(loaded.layers[3].attn.q_einsum.w[...]), q.astype(np.float16).astype(np.float32)
    )
    assert np.abs(logits_of(loaded) - logits_of(model)).max() < 2e-2


def test_metadata_follows_llama_cpp(tmp_path, tiny_model):
    import gguf

    model, tokenizer = tiny_model("tiny-gemma2")
    path = write_gguf(model_params(model), model.config, tokenizer, tmp_path / "g2.gguf")
    reader = gguf.GGUFReader(str(path))

    def field(key):
        return reader.fields[key].contents()

    assert field("general.architecture") == "gemma2"
    assert (field("gemma2.block_count"), field("gemma2.attention.key_length")) == (4, 16)
    assert field("gemma2.attention.sliding_window") == 8
    assert field("gemma2.attn_logit_softcapping") == pytest.approx(50.0)
    assert field("gemma2.final_logit_softcapping") == pytest.approx(30.0)
    assert field("gemma2.rope.freq_base") == pytest.approx(10_000.0)
    assert "gemma2.rope.scaling.type" not in reader.fields
    types = field("tokenizer.ggml.token_type")
    control = gguf.TokenType.CONTROL
    assert types[tokenizer.start_of_turn_id] == types[tokenizer.end_of_turn_id] == control
    assert field("tokenizer.ggml.add_bos_token") is True
    norm = reader.tensors[[t.name for t in reader.tensors].index("blk.1.ffn_norm.weight")]
    expected = np.asarray(model.layers[1].pre_ffw_norm.scale[...]) + 1.0
    np.testing.assert_array_equal(np.asarray(norm.data), expected)


def test_configs_llama_cpp_cannot_express_are_refused(tmp_path, tiny_model):
    model, tokenizer = tiny_model("tiny-gemma3")
    params = model_params(model)
    for change, message in (
        ({"query_pre_attn_scalar": 7.0}, "query_pre_attn_scalar=7.0"),
        ({"attention_pattern": ("local", "global")}, "attention pattern"),
        ({"local_rope_base": 20_000.0}, "local_rope_base"),
    ):
        config = dataclasses.replace(model.config, **change)
        with pytest.raises(ValueError, match=message):
            write_gguf(params, config, tokenizer, tmp_path / "x.gguf")
    with pytest.raises(ValueError, match="dtype must be one of"):
        write_gguf(params, model.config, tokenizer, tmp_path / "x.gguf", dtype="q4_k")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.heavy
def test_real_gemma3_270m_gguf_reads_like_llama_cpp_wrote_it(tmp_path):
    """The default weights, exported: the vocabulary is spelt as in the llama.cpp file they
    came from, and transformers' own GGUF loader computes our logits."""
    import gguf

    torch = pytest.importorskip("torch")
    pytest.importorskip("accelerate")
    transformers = pytest.importorskip("transformers")
    from tunix_jax.weights.loading import default_gguf_path

    model, tokenizer = load_model("gemma3-270m", "default")
    path = write_gguf(model_params(model), model.config, tokenizer, tmp_path / "g3.gguf")
    prompt = "<start_of_turn>user\nWhat is 17 + 25?<end_of_turn>\n<start_of_turn>model\n"
    tokens = np.asarray([tokenizer.encode(prompt, add_bos=True)], np.int32)
    ours = logits_of(model, tokens)
    del model

    real = gguf.GGUFReader(str(default_gguf_path())).fields
    written = gguf.GGUFReader(str(path)).fields
    for key in ("tokens", "scores", "bos_token_id", "eos_token_id", "padding_token_id"):
        key = f"tokenizer.ggml.{key}"
        assert written[key].contents() == real[key].contents(), key
    real_types = np.asarray(real["tokenizer.ggml.token_type"].contents())
    types = np.asarray(written["tokenizer.ggml.token_type"].contents())
    # SentencePiece's own type for <unk> (llama.cpp's file marks it CONTROL) is the only change.
    assert (
        np.flatnonzero(types != real_types).tolist() == [3] and types[3] == gguf.TokenType.UNKNOWN
    )

    hf = transformers.AutoModelForCausalLM.from_pretrained(
        str(tmp_path), gguf_file=path.name, dtype=torch.float32
    ).eval()
    with torch.no_grad():
        expected = hf(torch.tensor(tokens.tolist())).logits.numpy()
    diff = np.abs(ours - expected).max()
    print(f"gemma3-270m GGUF via transformers: max |logit diff| = {diff:.3g}")
    assert diff < 1e-3
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    assert hf_tokenizer(prompt)["input_ids"] == tokens[0].tolist()
