"""Streaming generation: the prefill and single decode steps a Python loop drives give the
batch sampler's greedy tokens, one at a time as they are decoded, and text pieces that
never split a multi-byte character."""

from __future__ import annotations

import pytest

from tunix_jax.models.gemma.sampler import text_deltas
from tunix_jax.models.gemma.tokenizer import Tokenizer, byte_level_proto

CHAT_PROMPT = "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n"
# One prompt and one budget for every test, so they share compilations (on 2 cores each
# costs seconds); prompt and answer span several sliding windows (8).
NEW_TOKENS = 40


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_the_joined_stream_is_the_batch_completion(preset, shared_sampler):
    sampler = shared_sampler(preset, seed=1)
    pieces = list(sampler.stream(CHAT_PROMPT, max_new_tokens=NEW_TOKENS))
    assert "".join(pieces) == sampler.generate([CHAT_PROMPT], max_new_tokens=NEW_TOKENS)[0]
    ids = sampler.tokenizer.encode(CHAT_PROMPT, add_bos=True)
    streamed = list(sampler.stream_ids(ids, max_new_tokens=NEW_TOKENS, stop_ids=()))
    batch = sampler.generate_ids([ids], max_new_tokens=NEW_TOKENS, stop_ids=())
    assert streamed == batch.tokens[0]
    assert len(streamed) == NEW_TOKENS


def test_a_stop_token_ends_the_stream_as_it_ends_a_batch_row(shared_sampler):
    sampler = shared_sampler("tiny-gemma3", seed=1)
    ids = sampler.tokenizer.encode(CHAT_PROMPT, add_bos=True)
    free = sampler.generate_ids([ids], max_new_tokens=NEW_TOKENS, stop_ids=()).tokens[0]
    stop = free[5]
    stopped = list(sampler.stream_ids(ids, max_new_tokens=NEW_TOKENS, stop_ids=(stop,)))
    assert stopped == free[: free.index(stop)]
    batch = sampler.generate_ids([ids], max_new_tokens=NEW_TOKENS, stop_ids=(stop,))
    assert stopped == batch.tokens[0]


def test_tokens_come_out_as_they_are_decoded_and_stop_when_no_longer_read(shared_sampler):
    sampler = shared_sampler("tiny-gemma3", seed=1)
    prefill, decode_step = sampler._streaming_programs
    steps: list[int] = []

    def counted_step(*args, **kwargs):
        steps.append(1)
        return decode_step(*args, **kwargs)

    sampler.__dict__["_streaming_programs"] = (prefill, counted_step)
    try:
        ids = sampler.tokenizer.encode(CHAT_PROMPT, add_bos=True)
        stream = sampler.stream_ids(ids, max_new_tokens=NEW_TOKENS, stop_ids=())
        assert steps == []  # nothing runs before the first token is asked for
        first = [next(stream) for _ in range(3)]
        assert len(steps) == 2  # the prefill chose the first token, one step each after
        stream.close()
        assert len(steps) == 2
    finally:
        del sampler.__dict__["_streaming_programs"]
    full = sampler.generate_ids([ids], max_new_tokens=NEW_TOKENS, stop_ids=()).tokens[0]
    assert first == full[:3]


@pytest.mark.parametrize("bad", [0, -3])
def test_stream_checks_its_budget(shared_sampler, bad):
    sampler = shared_sampler("tiny-gemma3", seed=1)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1"):
        next(sampler.stream_ids([2, 5], max_new_tokens=bad))


def byte_ids(tokenizer: Tokenizer, data: bytes) -> list[int]:
    ids = [tokenizer.piece_id(f"<0x{byte:02X}>") for byte in data]
    assert None not in ids
    return [i for i in ids if i is not None]


def test_text_pieces_never_split_a_multi_byte_character():
    tokenizer = Tokenizer(byte_level_proto(512))
    text = "a€😀b"
    pieces = list(text_deltas(tokenizer, byte_ids(tokenizer, text.encode())))
    assert pieces == ["a", "€", "😀", "b"]


def test_text_pieces_of_invalid_bytes_join_to_the_decoded_text():
    tokenizer = Tokenizer(byte_level_proto(512))
    # A lone lead byte before "A", a character cut short at the very end.
    ids = byte_ids(tokenizer, b"\xe2A" + "€".encode()[:2])
    pieces = list(text_deltas(tokenizer, ids))
    assert "".join(pieces) == tokenizer.decode(ids)
    assert pieces[0] == "\ufffdA" and pieces[-1].startswith("\ufffd")
