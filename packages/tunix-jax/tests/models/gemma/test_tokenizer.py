import io
import os

import pytest
import sentencepiece as spm

from tunix_jax.models.gemma.tokenizer import Tokenizer, byte_level_proto
from tunix_jax.weights import gguf_io

SAMPLES = [
    "Hello, world!",
    "  leading and   inner   runs of spaces  ",
    "tabs\tand\nnew\n\nlines\n",
    "unicode: naïve café, 日本語, emoji 🙂, math ∑",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
]


@pytest.fixture(scope="module")
def trained_tokenizer():
    """A small SentencePiece BPE model with Gemma's special ids and turn markers."""
    corpus = "\n".join(SAMPLES * 20 + ["the quick brown fox jumps over the lazy dog"] * 50)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus.splitlines()),
        model_writer=model,
        model_type="bpe",
        vocab_size=400,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
        byte_fallback=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        allow_whitespace_only_pieces=True,
        minloglevel=2,
    )
    return Tokenizer(model.getvalue())


@pytest.mark.parametrize("text", SAMPLES)
def test_round_trip(text, trained_tokenizer):
    ids = trained_tokenizer.encode(text)
    assert trained_tokenizer.decode(ids) == text
    assert trained_tokenizer.encode(text, add_bos=True) == [trained_tokenizer.bos_id, *ids]


def test_special_ids_and_turn_markers(trained_tokenizer):
    tok = trained_tokenizer
    assert (tok.pad_id, tok.eos_id, tok.bos_id) == (0, 1, 2)
    assert tok.encode("<start_of_turn>") == [tok.start_of_turn_id]
    assert tok.encode("<end_of_turn>") == [tok.end_of_turn_id]
    assert tok.stop_ids == (1, tok.end_of_turn_id)
    assert tok.piece_id("<no_such_piece>") is None
    assert tok.vocab_size == 400


def test_save_and_load(tmp_path, trained_tokenizer):
    path = trained_tokenizer.save(tmp_path / "tok")
    for location in (path, tmp_path / "tok"):
        loaded = Tokenizer.load(location)
        assert loaded.encode(SAMPLES[3]) == trained_tokenizer.encode(SAMPLES[3])
    with pytest.raises(FileNotFoundError, match="missing"):
        Tokenizer.load(tmp_path / "missing")


@pytest.mark.parametrize("text", SAMPLES)
def test_byte_level_tokenizer_round_trips(text):
    tok = Tokenizer(byte_level_proto(512))
    assert tok.decode(tok.encode(text)) == text
    assert tok.vocab_size == 512 and tok.end_of_turn_id == 5


def test_gguf_vocabulary_converts_with_turn_markers_as_single_ids(
    tmp_path, trained_tokenizer, tiny_model, gguf_writer
):
    model, _ = tiny_model("tiny-gemma3")
    path = gguf_writer(tmp_path / "tiny.gguf", model, trained_tokenizer)
    converted = Tokenizer(gguf_io.tokenizer_proto(path))
    turn = SAMPLES[4]
    assert converted.encode(turn) == trained_tokenizer.encode(turn)
    assert converted.encode("<end_of_turn>") == [trained_tokenizer.end_of_turn_id]
    for text in SAMPLES:
        assert converted.decode(converted.encode(text)) == text
    assert (converted.bos_id, converted.eos_id, converted.pad_id) == (2, 1, 0)


def test_gguf_vocabulary_is_converted_once_and_reused_by_later_processes(
    tmp_path, monkeypatch, trained_tokenizer, tiny_model, gguf_writer
):
    monkeypatch.setenv("TUNIX_CACHE_DIR", str(tmp_path / "cache"))
    model, _ = tiny_model("tiny-gemma3")
    path = gguf_writer(tmp_path / "tiny.gguf", model, trained_tokenizer)
    first = gguf_io.tokenizer_proto(path)
    assert len(list((tmp_path / "cache" / "tokenizers").glob("*.model"))) == 1

    def no_parsing(path):
        raise AssertionError(f"{path} parsed again")

    monkeypatch.setattr(gguf_io, "_convert_tokenizer", no_parsing)
    assert gguf_io.tokenizer_proto(path) == first
    # A rewritten file (another modification time) is converted again.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="parsed again"):
        gguf_io.tokenizer_proto(path)
