import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from tunix_core.errors import DataError
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.training.data import BatchStream, build_rows, tokenize_pairs
from tunix_jax.training.loop import segment_attention_mask

BOS = 2


class WordEncoder:
    """One id per character (offset 10), BOS = 2: lengths are easy to reason about."""

    def encode(self, text, *, add_bos=False):
        return ([BOS] if add_bos else []) + [10 + (ord(c) % 90) for c in text]


def test_prompt_gets_bos_and_only_the_completion_is_weighted():
    examples, report = tokenize_pairs([("abc", "xy")], WordEncoder(), max_seq_len=16)
    (example,) = examples
    assert example.tokens.tolist()[0] == BOS and len(example) == 6
    assert example.loss_mask.tolist() == [False] * 4 + [True] * 2
    rows = build_rows(examples, [0], 8, packing=False)
    # Inputs predict the next token; weights sit on the targets that are completion tokens.
    assert rows["inputs"][0, :5].tolist() == example.tokens[:-1].tolist()
    assert rows["targets"][0, :5].tolist() == example.tokens[1:].tolist()
    assert rows["weights"][0].tolist() == [0, 0, 0, 1, 1, 0, 0, 0]
    assert rows["segment_ids"][0].tolist() == [1] * 5 + [0] * 3
    assert report.kept == 1 and report.truncated == 0 and report.dropped == 0


def test_truncation_and_dropping_are_counted():
    pairs = [("ab", "cdefghi"), ("abcdefghij", "k"), ("abcdefg", "hi")]
    examples, report = tokenize_pairs(pairs, WordEncoder(), max_seq_len=8)
    assert report.truncated == 2 and report.dropped == 1 and report.kept == 2
    assert all(len(e) == 9 for e in examples)  # max_seq_len inputs + one target
    # The prompt of the third example (BOS + 7) leaves one completion token.
    assert int(examples[1].loss_mask.sum()) == 1


def test_packing_keeps_segments_apart_with_restarting_positions():
    pairs = [("a", "bc"), ("de", "f"), ("ghij", "klmn")]
    examples, _ = tokenize_pairs(pairs, WordEncoder(), max_seq_len=8)
    rows = build_rows(examples, [0, 1, 2], 8, packing=True)
    assert rows["inputs"].shape == (2, 8)
    assert rows["segment_ids"][0].tolist() == [1, 1, 1, 2, 2, 2, 0, 0]
    assert rows["positions"][0].tolist() == [0, 1, 2, 0, 1, 2, 0, 0]
    assert rows["segment_ids"][1].tolist() == [1] * 8
    mask = np.asarray(segment_attention_mask(jnp.asarray(rows["segment_ids"])))
    assert mask[0, 4].tolist() == [False, False, False, True, True, False, False, False]
    assert not mask[0, 6].any()  # padding attends to nothing


def test_packed_examples_compute_what_they_compute_alone():
    model = Transformer(get_config("tiny-gemma3"), rngs=nnx.Rngs(0))
    forward = nnx.jit(lambda m, tokens, positions, mask: m(tokens, positions, mask)[0])
    rng = np.random.default_rng(0)
    lengths = [5, 9, 3]
    seqs = [rng.integers(1, 512, size=n) for n in lengths]
    tokens = jnp.asarray(np.concatenate(seqs))[None]
    positions = jnp.asarray(np.concatenate([np.arange(n) for n in lengths]))[None]
    segments = jnp.asarray(np.repeat(np.arange(1, 4), lengths))[None]
    packed = forward(model, tokens, positions, segment_attention_mask(segments))
    # Alone: one right-padded row per example (causal attention never sees the padding).
    alone_tokens = np.zeros((3, sum(lengths)), np.int32)
    alone_segments = np.zeros((3, sum(lengths)), np.int32)
    for row, seq in enumerate(seqs):
        alone_tokens[row, : len(seq)] = seq
        alone_segments[row, : len(seq)] = 1
    alone_positions = jnp.broadcast_to(jnp.arange(sum(lengths)), (3, sum(lengths)))
    alone = forward(model, jnp.asarray(alone_tokens), alone_positions,
                    segment_attention_mask(jnp.asarray(alone_segments)))  # fmt: skip
    start = 0
    for row, seq in enumerate(seqs):
        np.testing.assert_allclose(
            packed[0, start : start + len(seq)], alone[row, : len(seq)], atol=2e-5
        )
        start += len(seq)


def _stream(examples, **kwargs):
    defaults = {"batch_size": 3, "seq_len": 12, "seed": 5, "packing": False}
    return BatchStream(examples, **{**defaults, **kwargs})


def test_batch_stream_is_deterministic_crosses_epochs_and_resumes_exactly():
    pairs = [(f"q{i}", "a" * (1 + i % 3)) for i in range(7)]
    examples, _ = tokenize_pairs(pairs, WordEncoder(), max_seq_len=12)
    first = _stream(examples).next_batch()
    again = _stream(examples).next_batch()
    np.testing.assert_array_equal(first["inputs"], again["inputs"])

    reference = _stream(examples)
    batches = [reference.next_batch() for _ in range(6)]  # 18 rows: crosses two epochs
    assert reference.epoch == 2
    epoch0 = {tuple(r) for b in batches[:2] for r in b["inputs"]}
    assert len(epoch0) == 6  # 6 distinct examples in the first 6 rows of a 7-row epoch

    resumed = _stream(examples)
    for _ in range(4):
        resumed.next_batch()
    state = resumed.state()
    fresh = _stream(examples)
    fresh.restore(state)
    for expected in batches[4:]:
        np.testing.assert_array_equal(fresh.next_batch()["inputs"], expected["inputs"])


def test_different_seeds_shuffle_differently():
    pairs = [(f"q{i}", "a") for i in range(20)]
    examples, _ = tokenize_pairs(pairs, WordEncoder(), max_seq_len=12)
    a = _stream(examples, seed=1).next_batch()["inputs"]
    b = _stream(examples, seed=2).next_batch()["inputs"]
    assert not np.array_equal(a, b)


def test_no_examples_is_a_clear_error():
    with pytest.raises(DataError, match="no training examples"):
        _stream([])


def test_tokenize_uses_jax_free_numpy_rows():
    examples, _ = tokenize_pairs([("a", "b")], WordEncoder(), max_seq_len=4)
    rows = build_rows(examples, [0], 4, packing=True)
    assert all(isinstance(v, np.ndarray) for v in rows.values())
    assert not any(isinstance(v, jax.Array) for v in rows.values())
