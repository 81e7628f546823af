"""Scoring completions with named, weighted rewards: what an RL trainer calls each step.

The rewards themselves come from plugins (``tunix_register_rewards``; the built-ins are
tunix-eval's). :func:`score_rewards` loads the ones a config names from the run host's
registry (:class:`~tunix_core.protocols.RunContext`) and returns each one's scores and their
weighted mean. A trainer that scores every step loads its rewards once with
:func:`load_rewards` (which also hands a :class:`ConfigurableReward` its options) and scores
with :func:`score_loaded`. See ``docs/rl.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from tunix_core.errors import ConfigError, PluginError
from tunix_core.protocols import Reward, RewardRegistry

if TYPE_CHECKING:
    from tunix_core.protocols import RunContext


@attrs.frozen
class RewardScores:
    """Per completion: each named reward's score (``NaN`` where it does not apply) and the
    weighted mean of those that apply (``NaN`` where none does)."""

    by_reward: dict[str, list[float]]
    total: list[float]


# The largest weight: only the ratios of weights matter, and with weights near the largest
# float their sum overflows to inf and a perfect completion's reward becomes NaN.
MAX_REWARD_WEIGHT = 1e6


def check_reward_weights(registry: RewardRegistry, weights: Mapping[str, float]) -> None:
    """Raise before any reward runs: :class:`~tunix_core.registry.UnknownNameError` for a
    name no plugin registered (listing the installed ones), ``ValueError`` for a weight
    that is not a positive number up to :data:`MAX_REWARD_WEIGHT` or an empty mapping."""
    if not weights:
        raise ValueError("no rewards named: give at least one name with a positive weight")
    for name, weight in weights.items():
        registry.entry(name)
        if (isinstance(weight, bool) or not isinstance(weight, int | float)
                or not 0 < weight <= MAX_REWARD_WEIGHT):  # fmt: skip
            raise ValueError(f"reward {name!r}: weight must be a positive number up to "
                             f"{MAX_REWARD_WEIGHT:g}, got {weight!r}")  # fmt: skip


@runtime_checkable
class ConfigurableReward(Protocol):
    """A registered reward that takes options (``trainer.options.reward_options.<name>``):
    :func:`load_rewards` calls ``configure`` once per run and scores with what it returns.
    ``configure`` checks the options and whatever it needs (a model it will load, say)
    and raises :class:`~tunix_core.errors.ConfigError` naming ``field.<option>``."""

    def configure(self, options: Mapping[str, Any], *, field: str, context: RunContext) -> Reward:
        """The reward with ``options`` applied (``options`` may be empty: the defaults)."""
        ...


def load_rewards(
    context: RunContext,
    weights: Mapping[str, float],
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    field: str = "reward_options",
) -> dict[str, Reward]:
    """The rewards named in ``weights``, loaded from ``context.rewards``; a
    :class:`ConfigurableReward` is configured with its entry of ``options`` (name ->
    options; ``field`` is where those live in the config, for errors). Options for a
    reward not named in ``weights``, or for one that takes none, are a ConfigError."""
    registry = context.rewards
    check_reward_weights(registry, weights)
    options = options or {}
    for name in options:
        if name not in weights:
            raise ConfigError(f"{field}.{name}: options for a reward that is not in the rewards "
                              f"({', '.join(weights)})")  # fmt: skip
    loaded: dict[str, Reward] = {}
    for name in weights:
        reward = _load(registry, name)
        if isinstance(reward, ConfigurableReward):
            reward = reward.configure(
                options.get(name, {}), field=f"{field}.{name}", context=context
            )
        elif name in options:
            raise ConfigError(f"{field}.{name}: reward {name!r} takes no options")
        loaded[name] = reward
    return loaded


def score_rewards(
    context: RunContext,
    weights: Mapping[str, float],
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
) -> RewardScores:
    """Run every reward of ``context.rewards`` named in ``weights`` (name -> positive
    weight) on the completions, each given ``context``. A reward's ``NaN`` for a completion
    leaves it out of that completion's mean (the other weights are renormalised)."""
    _check_parallel(prompts, completions, expected, meta)
    rewards = load_rewards(context, weights)
    return score_loaded(context, rewards, weights, prompts, completions, expected, meta)


def score_loaded(
    context: RunContext,
    rewards: Mapping[str, Reward],
    weights: Mapping[str, float],
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
) -> RewardScores:
    """:func:`score_rewards` with rewards already loaded (:func:`load_rewards`)."""
    _check_parallel(prompts, completions, expected, meta)
    n = len(completions)
    by_reward: dict[str, list[float]] = {}
    totals, weight_sums = [0.0] * n, [0.0] * n
    for name, weight in weights.items():
        scores = [float(s) for s in rewards[name](prompts, completions, expected, meta,
                                                   context=context)]  # fmt: skip
        if len(scores) != n:
            raise PluginError(f"reward {name!r} returned {len(scores)} scores for {n} completions")
        by_reward[name] = scores
        for i, score in enumerate(scores):
            if math.isinf(score):
                raise PluginError(f"reward {name!r} scored completion {i} {score}: a reward is "
                                  "a finite number, or NaN where it does not apply")  # fmt: skip
            if not math.isnan(score):
                totals[i] += weight * score
                weight_sums[i] += weight
    total = [t / w if w else math.nan for t, w in zip(totals, weight_sums, strict=True)]
    for i, (value, weight_sum) in enumerate(zip(total, weight_sums, strict=True)):
        if weight_sum and not math.isfinite(value):  # finite scores too large to weight
            scored = {name: scores[i] for name, scores in by_reward.items()}
            raise PluginError(f"the weighted reward of completion {i} is {value} (scores "
                              f"{scored}, weights {dict(weights)})")  # fmt: skip
    return RewardScores(by_reward, total)


def _check_parallel(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
) -> None:
    n = len(completions)
    if not (len(prompts) == len(expected) == len(meta) == n):
        raise ValueError(
            f"score_rewards: {len(prompts)} prompts, {n} completions, {len(expected)} "
            f"expected answers and {len(meta)} metas; they must be parallel"
        )


def _load(registry: RewardRegistry, name: str) -> Reward:
    try:
        return registry.load(name)
    except (ImportError, AttributeError) as exc:
        entry = registry.entry(name)
        raise PluginError(f"reward {name!r} from {entry.distribution} cannot be loaded "
                          f"from {entry.target!r}: {exc}") from None  # fmt: skip
