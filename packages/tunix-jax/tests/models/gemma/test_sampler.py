import jax.numpy as jnp
import pytest
from flax import nnx

from tunix_jax.models.gemma.sampler import LENGTH, STOP, Sampler, bucket, compact_sizes

PROMPTS = [[2, 10, 11, 12], [2, *range(20, 33)], [2, 7]]


def greedy_by_recomputation(model, prompt, steps, width=32):
    """Greedy tokens from full, uncached forwards (fixed width: trailing pads are causal-safe)."""
    forward = nnx.jit(lambda m, tokens: m(tokens, jnp.arange(width)[None])[0])
    ids = list(prompt)
    for _ in range(steps):
        padded = jnp.array([ids + [0] * (width - len(ids))])
        ids.append(int(jnp.argmax(forward(model, padded)[0, len(ids) - 1])))
    return ids[len(prompt) :]


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_cached_greedy_decoding_matches_recomputation(preset, shared_sampler):
    sampler = shared_sampler(preset, seed=1)
    model = sampler.model
    steps = 12  # prompt + steps exceeds the sliding window of 8
    result = sampler.generate_ids(PROMPTS, max_new_tokens=steps, stop_ids=())
    assert result.stop_reasons == [LENGTH] * 3
    for prompt, tokens in zip(PROMPTS, result.tokens, strict=True):
        assert tokens == greedy_by_recomputation(model, prompt, steps)
    assert len({tuple(t) for t in result.tokens}) == 3


def test_batching_and_padding_do_not_change_results(shared_sampler):
    sampler = shared_sampler("tiny-gemma3", seed=1)
    batched = sampler.generate_ids(PROMPTS, max_new_tokens=6, stop_ids=())
    # Alone, the short prompts get a smaller batch and far less left padding.
    alone = sampler.generate_ids([PROMPTS[0]], max_new_tokens=6, stop_ids=()).tokens
    assert alone == [batched.tokens[0]]
    alone = sampler.generate_ids([PROMPTS[2]], max_new_tokens=6, stop_ids=()).tokens
    assert alone == [batched.tokens[2]]


def test_stop_tokens_end_rows_and_are_not_returned(shared_sampler):
    sampler = shared_sampler("tiny-gemma3", seed=1)
    # 12 new tokens, as in the first test: stop ids are not compiled in, so both calls
    # reuse its program.
    free = sampler.generate_ids(PROMPTS, max_new_tokens=12, stop_ids=())
    stop_token = free.tokens[1][3]
    stopped = sampler.generate_ids(PROMPTS, max_new_tokens=12, stop_ids=(stop_token,))
    first = free.tokens[1].index(stop_token)
    assert stopped.tokens[1] == free.tokens[1][:first]
    assert stopped.stop_reasons[1] == STOP
    for row in (0, 2):
        if stop_token not in free.tokens[row]:
            assert stopped.tokens[row] == free.tokens[row]
            assert stopped.stop_reasons[row] == LENGTH
    capped = sampler.generate_ids(PROMPTS, max_new_tokens=3, stop_ids=())
    assert [len(t) for t in capped.tokens] == [3, 3, 3]


def test_compacting_finished_rows_away_keeps_every_rows_tokens(shared_sampler):
    sampler = shared_sampler("tiny-gemma3", seed=1)
    prompts = [[2, 5 + row, 40 + 3 * row, 90 - row] for row in range(8)]  # batch 8: compacts to 4
    free = sampler.generate_ids(prompts, max_new_tokens=12, stop_ids=()).tokens

    # Stop tokens that end the other rows early while the last row, which holds none of
    # them, runs on: the batch shrinks with a row still decoding.
    runs_on = set(free[-1])
    stops = {next((t for t in row[1:6] if t not in runs_on), None) for row in free[:-1]} - {None}
    batched = sampler.generate_ids(prompts, max_new_tokens=12, stop_ids=tuple(stops))
    assert compact_sizes(sampler.batch_size(len(prompts))) == (4,)
    assert batched.stop_reasons[-1] == LENGTH and batched.stop_reasons.count(STOP) >= 5
    for row, prompt in enumerate(prompts):
        alone = sampler.generate_ids([prompt], max_new_tokens=12, stop_ids=tuple(stops))
        assert alone.tokens == [batched.tokens[row]]
        assert alone.stop_reasons == [batched.stop_reasons[row]]


def test_compaction_halves_the_batch_down_to_four_rows():
    assert compact_sizes(48) == (24, 12, 6)
    assert compact_sizes(8) == (4,)
    assert compact_sizes(7) == () == compact_sizes(1)


def test_sampling_is_seeded_and_top_k_one_is_greedy(shared_sampler):
    sampler = shared_sampler("tiny-gemma2", seed=1)
    kwargs = {"max_new_tokens": 8, "stop_ids": ()}
    a = sampler.generate_ids(PROMPTS, temperature=1.5, seed=1, **kwargs).tokens
    b = sampler.generate_ids(PROMPTS, temperature=1.5, seed=1, **kwargs).tokens
    c = sampler.generate_ids(PROMPTS, temperature=1.5, seed=2, **kwargs).tokens
    assert a == b and a != c
    greedy = sampler.generate_ids(PROMPTS, **kwargs).tokens
    assert (
        sampler.generate_ids(PROMPTS, temperature=1.0, top_k=1, seed=5, **kwargs).tokens == greedy
    )
    tiny_p = sampler.generate_ids(PROMPTS, temperature=1.0, top_p=1e-6, seed=5, **kwargs).tokens
    assert tiny_p == greedy


def test_text_generation_and_compilation_reuse(tiny_model):
    sampler = Sampler(*tiny_model("tiny-gemma3"))
    out = sampler.generate(["hello", "a longer prompt"], max_new_tokens=4)
    assert len(out) == 2 and all(isinstance(text, str) for text in out)
    compiled = sampler._compiled._cache_size()
    # Same buckets (batch 2, a 16-token longest prompt, <= 8 new tokens): no new compilation.
    sampler.generate(["other", "another prompt!"], max_new_tokens=7)
    assert sampler._compiled._cache_size() == compiled
    sampler.generate(["other", "a much longer prompt than before"], max_new_tokens=7)
    assert sampler._compiled._cache_size() == compiled + 1
    assert sampler.generate([], max_new_tokens=3) == []
    with pytest.raises(ValueError, match="max_new_tokens"):
        sampler.generate(["x"], max_new_tokens=0)


def test_bucket_rounds_up_in_quarter_octaves():
    sizes = (1, 2, 3, 8, 9, 84, 128, 129, 160, 161, 1000)
    assert [bucket(n) for n in sizes] == [1, 2, 3, 8, 10, 96, 128, 160, 160, 192, 1024]
    assert bucket(3, minimum=8) == 8
    assert all(n <= bucket(n) < n * 1.25 + 1 for n in range(1, 5000))


def test_bf16_matmul_sampling_reads_bf16_weights_and_decodes_as_the_model_computes():
    from tunix_jax.weights.loading import load_model

    model, tokenizer = load_model("tiny-gemma3", "random", seed=1, matmul_dtype=jnp.bfloat16)
    sampler = Sampler(model, tokenizer)
    state = sampler._placed_state()
    assert state["embedder"]["input_embedding"][...].dtype == jnp.bfloat16
    assert state["final_norm"]["scale"][...].dtype == jnp.float32  # vectors stay as they are
    result = sampler.generate_ids(PROMPTS, max_new_tokens=8, stop_ids=())
    for prompt, tokens in zip(PROMPTS, result.tokens, strict=True):
        assert tokens == greedy_by_recomputation(model, prompt, 8)
