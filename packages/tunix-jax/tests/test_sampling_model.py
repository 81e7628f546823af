"""The ``jax`` backend's models draw samples (``SamplingModel``, for ``tunix distill``):
several samples of one prompt differ, and a seed reproduces them."""

from __future__ import annotations

from tunix_core.data.render import render_prompt
from tunix_core.protocols import ModelSpec, SamplingModel
from tunix_jax.backend import JaxBackend

PROMPT = render_prompt("What is 6 * 7?")


def test_samples_differ_from_each_other_and_repeat_with_their_seed():
    model = JaxBackend().load(ModelSpec("tiny-gemma3", "random"), progress=print)
    assert isinstance(model, SamplingModel)

    def draw(seed: int, temperature: float = 1.0, top_p: float = 1.0) -> list[str]:
        return model.sample([PROMPT] * 4, max_new_tokens=12, temperature=temperature,
                            top_p=top_p, seed=seed)  # fmt: skip

    first = draw(seed=3)
    assert len(first) == 4 and len(set(first)) > 1  # rows of one call are drawn independently
    assert draw(seed=3) == first
    assert draw(seed=4) != first
    nucleus = draw(seed=3, top_p=0.9)
    assert len(set(nucleus)) > 1 and draw(seed=3, top_p=0.9) == nucleus
    # Temperature 0 is the greedy completion, whatever the seed. Four rows, as drawn above:
    # the greedy program of that batch serves both calls (one compilation, not two).
    greedy = model.generate([PROMPT] * 4, max_new_tokens=12)
    assert len(set(greedy)) == 1 and draw(seed=5, temperature=0.0) == greedy
