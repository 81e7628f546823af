"""Decoding that ends cleanly: stop strings (``</answer>``) kept and ended on, in the batch
and in the stream; the no-repeat n-gram guard; the token budget that closes a reasoning.

The tiny random model repeats itself ("hello world" -> "fffff..."), which gives the guards
something to act on; its tokenizer is byte-level, so a string is spelled one way."""

from __future__ import annotations

import pytest

from tunix_jax.models.gemma.sampler import (
    LENGTH,
    STOP,
    TokenBudget,
    _cut_stream,
    cut_after,
    stop_string_ids,
)

NEW_TOKENS = 24
RUN_PROMPT = "hello world"  # the tiny-gemma3 seed-2 model answers "fffff" and more
FORCED = "</reasoning><answer>4</answer>"


@pytest.fixture
def sampler(shared_sampler):
    return shared_sampler("tiny-gemma3", seed=2)


def ids_of(sampler, prompt):
    return [sampler.tokenizer.encode(prompt, add_bos=True)]


def test_a_row_ends_right_after_a_stop_string_which_it_keeps(sampler):
    prompt = ids_of(sampler, RUN_PROMPT)
    free = sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS, stop_ids=())
    run = sampler.tokenizer.encode("f")[0]
    assert free.tokens[0][:5] == [run] * 5 and free.stop_reasons == [LENGTH]
    stopped = sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS, stop_ids=(),
                                   stop_strings=["fff"])  # fmt: skip
    assert stopped.tokens == [[run] * 3]
    assert stopped.stop_reasons == [STOP] and stopped.stop_tokens == [None]
    assert sampler.generate([RUN_PROMPT], max_new_tokens=NEW_TOKENS,
                            stop_strings=["fff"]) == ["fff"]  # fmt: skip


def test_the_text_is_cut_at_a_stop_string_the_tokens_spell_another_way(sampler):
    # "123 + 456 =" gives "DDDDDDeee...", with tokens that decode to nothing between
    # the last "D" and the first "e": no spelling of "De" matches, the text cut still does.
    free = sampler.generate(["123 + 456 ="], max_new_tokens=NEW_TOKENS)[0]
    assert free.startswith("DDDDDDee") and "De" in free
    cut = sampler.generate(["123 + 456 ="], max_new_tokens=NEW_TOKENS, stop_strings=["De"])[0]
    assert cut == free[: free.index("De") + 2]


def test_the_stream_stops_where_the_batch_stops(sampler):
    streamed = "".join(sampler.stream(RUN_PROMPT, max_new_tokens=NEW_TOKENS,
                                      stop_strings=["fff"]))  # fmt: skip
    assert streamed == "fff"
    streamed = "".join(sampler.stream("123 + 456 =", max_new_tokens=NEW_TOKENS,
                                      stop_strings=["De"]))  # fmt: skip
    assert streamed == sampler.generate(["123 + 456 ="], max_new_tokens=NEW_TOKENS,
                                        stop_strings=["De"])[0]  # fmt: skip


def test_cutting_keeps_the_first_stop_string_and_nothing_after_it():
    assert cut_after("<answer>4</answer>junk</answer>", ["</answer>"]) == "<answer>4</answer>"
    assert cut_after("no stop here", ["</answer>"]) == "no stop here"
    pieces = ["<answer>4</ans", "wer>", "<end"]
    assert "".join(_cut_stream(pieces, ["</answer>"])) == "<answer>4</answer>"


def test_spellings_of_a_stop_string_cover_its_contexts(sampler):
    assert stop_string_ids(sampler.tokenizer, "</answer>") == [
        tuple(sampler.tokenizer.encode("</answer>"))
    ]
    with pytest.raises(ValueError, match="empty"):
        stop_string_ids(sampler.tokenizer, "")


def test_the_no_repeat_guard_never_repeats_an_ngram_and_changes_nothing_before(sampler):
    prompt = ids_of(sampler, RUN_PROMPT)
    free = sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS, stop_ids=()).tokens[0]
    for size in (2, 3):
        guarded = sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS, stop_ids=(),
                                       no_repeat_ngram_size=size).tokens[0]  # fmt: skip
        ngrams = [tuple(guarded[i : i + size]) for i in range(len(guarded) - size + 1)]
        assert len(ngrams) == len(set(ngrams)) and len(guarded) == NEW_TOKENS
        # free starts with a run of one token: the guard bites at the size-th repeat
        assert guarded[:size] == free[:size] and guarded[size] != free[size]
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        sampler.generate_ids(prompt, max_new_tokens=4, no_repeat_ngram_size=1)


def test_a_budget_writes_the_closing_text_and_the_stop_string_ends_the_row(sampler):
    prompt = ids_of(sampler, RUN_PROMPT)
    free = sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS + 16, stop_ids=()).tokens[0]
    budget = TokenBudget(3, "</reasoning>", FORCED)
    forced = sampler.tokenizer.encode(FORCED)
    closed = sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS + 16, stop_ids=(),
                                  budget=budget, stop_strings=["</answer>"])  # fmt: skip
    assert closed.tokens == [free[:3] + forced] and closed.stop_reasons == [STOP]
    # Without the stop string the row goes on freely after the written text.
    going_on = sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS + 16, stop_ids=(),
                                    budget=budget).tokens[0]  # fmt: skip
    assert going_on[: 3 + len(forced)] == free[:3] + forced
    assert len(going_on) == NEW_TOKENS + 16
    # A row that closed before its budget ran out is left alone.
    early = TokenBudget(3, "ff", FORCED)
    assert sampler.generate_ids(prompt, max_new_tokens=NEW_TOKENS + 16, stop_ids=(),
                                budget=early).tokens[0] == free  # fmt: skip
