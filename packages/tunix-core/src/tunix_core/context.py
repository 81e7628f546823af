"""The run context: the plugin host a run was started with, handed to every plugin the run
drives (trainers, evaluators, rewards, packagers, dataset loading).

Plugins reach registries and lifecycle hooks only through it, so two runs in one process
with different hosts (a notebook's own host beside the installed one, or two tests) each
fire their own plugins. Only the command line and :func:`tunix_core.api.run` build a host
(:func:`tunix_core.plugins.get_host`); everything below them takes a context.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    import pluggy

    from tunix_core.plugins import PluginHost
    from tunix_core.registry import (
        AnswerCheckRegistry,
        BackendRegistry,
        EvaluatorRegistry,
        RewardRegistry,
        TransformRegistry,
    )
    from tunix_core.rundir import RunDirectory


def _silent(_message: str) -> None:
    """Progress nobody reads (a command scoring outside a run)."""


@attrs.frozen
class RunContext:
    """What a run hands its plugins. ``run`` is None outside a run's stages (validation
    before the run directory exists, ``tunix eval``, ``tunix validate``); ``progress``
    receives the lines a run echoes and writes to ``run.log``."""

    host: PluginHost
    run: RunDirectory | None = None
    progress: Callable[[str], None] = _silent

    @property
    def hook(self) -> pluggy.HookRelay:
        """The host's hook caller (``context.hook.tunix_train_step_end(...)``)."""
        return self.host.manager.hook

    @property
    def answer_checks(self) -> AnswerCheckRegistry:
        return self.host.answer_checks

    @property
    def rewards(self) -> RewardRegistry:
        return self.host.rewards

    @property
    def backends(self) -> BackendRegistry:
        return self.host.backends

    @property
    def evaluators(self) -> EvaluatorRegistry:
        return self.host.evaluators

    @property
    def transforms(self) -> TransformRegistry:
        return self.host.transforms

    def within(self, run: RunDirectory, progress: Callable[[str], None]) -> RunContext:
        """This context for the stages of ``run``, reporting to ``progress``."""
        return attrs.evolve(self, run=run, progress=progress)


__all__ = ["RunContext"]
