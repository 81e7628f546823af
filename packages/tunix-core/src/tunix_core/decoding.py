"""Guards of an evaluation's greedy decoding: a leaf module, so the config, the
evaluation loop and the backends name them without importing one another."""

from __future__ import annotations

import attrs

# eval.reasoning_budget's default. On the default run's model (160 new tokens) it ends the
# completions that loop inside <reasoning> without changing which answers are right
# (docs/evaluation.md).
DEFAULT_REASONING_BUDGET = 120


@attrs.frozen
class DecodingOptions:
    """Guards of an evaluation's greedy decoding (``eval.no_repeat_ngram_size``,
    ``eval.reasoning_budget``; docs/evaluation.md). A :class:`Generator` that supports
    them takes them as ``generate(..., decoding=options)``; the evaluation passes them only
    when one is set. A generator that takes none decodes plainly under the defaults and
    is refused any other setting."""

    # A token that would repeat an n-gram (of this many tokens) the completion already
    # holds is never chosen.
    no_repeat_ngram_size: int | None = None
    # After this many new tokens without ``</reasoning>``, the generator writes
    # ``</reasoning><answer>`` itself and the model goes on with the answer.
    reasoning_budget: int | None = None

    @property
    def active(self) -> bool:
        return self.no_repeat_ngram_size is not None or self.reasoning_budget is not None

    @property
    def is_default(self) -> bool:
        """Whether these are the config's defaults, which nobody asked for by name."""
        return self == DecodingOptions(reasoning_budget=DEFAULT_REASONING_BUDGET)

    def as_dict(self) -> dict[str, int | None]:
        return {"no_repeat_ngram_size": self.no_repeat_ngram_size,
                "reasoning_budget": self.reasoning_budget}  # fmt: skip
