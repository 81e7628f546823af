"""The real Gemma 3 270M from the PyPI GGUF package, against transformers' GGUF loading."""

import numpy as np
import pytest

pytestmark = pytest.mark.heavy

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "<start_of_turn>user\nWhat is 12 + 30?<end_of_turn>\n<start_of_turn>model\n",
    "Water boils at a temperature of",
    "Les trois couleurs du drapeau français sont",
]


@pytest.fixture(scope="module")
def ours():
    from tunix_jax.weights.loading import load_model

    return load_model("gemma3-270m", "default")


@pytest.fixture(scope="module")
def transformers_model():
    torch = pytest.importorskip("torch")
    pytest.importorskip("accelerate")
    transformers = pytest.importorskip("transformers")
    from tunix_jax.weights.loading import default_gguf_path

    path = default_gguf_path()
    # transformers dequantises with the same gguf code; ask for float32 to compare like for like.
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model, tokenizer


def test_turn_markers_are_single_ids(ours):
    _, tokenizer = ours
    assert tokenizer.encode("<start_of_turn>") == [105]
    assert tokenizer.encode("<end_of_turn>") == [106]
    assert tokenizer.end_of_turn_id == 106 and tokenizer.eos_id == 1 and tokenizer.bos_id == 2
    for text in [*PROMPTS, "  spaces\t\ttabs\n\n\nnewlines 🙂 日本語 ∑"]:
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_logits_match_transformers_gguf(ours, transformers_model):
    import torch
    from flax import nnx

    model, tokenizer = ours
    hf_model, hf_tokenizer = transformers_model
    forward = nnx.jit(lambda m, tokens, positions: m(tokens, positions)[0])
    for prompt in PROMPTS:
        ids = tokenizer.encode(prompt, add_bos=True)
        hf_ids = hf_tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert ids[1:] == hf_ids, prompt
        with torch.no_grad():
            expected = hf_model(torch.tensor([ids])).logits[0].numpy()
        tokens = np.asarray([ids], np.int32)
        got = np.asarray(forward(model, tokens, np.arange(len(ids))[None]))[0]
        assert (got.argmax(-1) == expected.argmax(-1)).all(), prompt
        np.testing.assert_allclose(got, expected, atol=1e-3, rtol=0, err_msg=prompt)


def test_greedy_continuation_is_sensible(ours):
    from tunix_jax.models.gemma.sampler import Sampler

    model, tokenizer = ours
    sampler = Sampler(model, tokenizer)
    completions = sampler.generate(
        ["The capital of France is", "1, 2, 3, 4, 5,"], max_new_tokens=12
    )
    assert "Paris" in completions[0] or "France" in completions[0], completions
    assert completions[1].lstrip().startswith("6"), completions


def test_every_tensor_decodes_as_gguf_reader_decodes_it():
    # The loader's own header parser and many-rows decoding against gguf.GGUFReader +
    # gguf.quants.dequantize (the loader before them), bit for bit, on the real file.
    import gguf

    from tunix_jax.weights import gguf_io
    from tunix_jax.weights.loading import default_gguf_path

    path = default_gguf_path()
    ours = gguf_io.GGUFTensors(path)
    reader = gguf.GGUFReader(str(path))
    assert [t.name for t in reader.tensors] == list(ours.tensors)
    for tensor in reader.tensors:
        want = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        got = gguf_io.dequantize(ours, ours.tensors[tensor.name])
        assert got.shape == want.shape, tensor.name
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), tensor.name)
