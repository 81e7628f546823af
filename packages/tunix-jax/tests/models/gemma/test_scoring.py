import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunix_jax.models.gemma.scoring import completion_logprobs


def logprob_by_hand(model, prompt, completion):
    """Sum of log p(token | prefix) from one unpadded forward pass per row."""
    row = [*prompt, *completion]
    logits, _ = model(jnp.asarray([row]), jnp.arange(len(row))[None])
    logprobs = jax.nn.log_softmax(np.asarray(logits[0], dtype=np.float32), axis=-1)
    return sum(float(logprobs[len(prompt) - 1 + i, token]) for i, token in enumerate(completion))


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_scores_match_an_unpadded_forward_pass(preset, tiny_model):
    model, _ = tiny_model(preset, seed=3)
    prompts = [[2, 10, 11, 12], [2, *range(20, 33)]]
    completions = [[40, 41, 42], [7]]
    scores = completion_logprobs(model, prompts, completions)
    for score, prompt, completion in zip(scores, prompts, completions, strict=True):
        assert score == pytest.approx(logprob_by_hand(model, prompt, completion), abs=1e-4)
    assert all(score < 0 for score in scores)


def test_the_greedy_continuation_scores_higher_than_another(tiny_model):
    model, _ = tiny_model("tiny-gemma3", seed=1)
    prompt = [2, 10, 11, 12]
    logits, _ = model(jnp.asarray([prompt]), jnp.arange(len(prompt))[None])
    ranked = np.argsort(np.asarray(logits[0, -1]))
    best, worst = int(ranked[-1]), int(ranked[0])
    high, low, empty = completion_logprobs(model, [prompt] * 3, [[best], [worst], []])
    assert high > low
    assert empty == 0.0
