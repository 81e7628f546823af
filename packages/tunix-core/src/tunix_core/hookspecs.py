"""The hooks a tunix plugin may implement.

A plugin is a module (or object) registered under the entry-point group ``tunix``
whose functions are decorated with :data:`hookimpl`. Registration hooks are handed a
typed registry; they register names with lazy ``"module:attribute"`` targets and must
not import heavy libraries. Every hook here is documented in ``docs/hooks.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from tunix_core.command_group import TunixGroup
    from tunix_core.protocols import (
        AnswerCheckRegistry,
        BackendRegistry,
        DatasetRegistry,
        EvaluatorRegistry,
        PackagerRegistry,
        RewardRegistry,
        TrainerRegistry,
        TransformRegistry,
    )
    from tunix_core.rundir import RunDirectory

PROJECT_NAME = "tunix"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def tunix_register_datasets(registry: DatasetRegistry) -> None:
    """Register dataset providers.

    Called once when the plugin host starts, before any command runs. Call
    ``registry.register(name, "module:Provider", description=...)``; the target must
    implement :class:`tunix_core.protocols.DatasetProvider`. Returns nothing.
    """


@hookspec
def tunix_register_trainers(registry: TrainerRegistry) -> None:
    """Register trainers.

    Called once when the plugin host starts. The target must implement
    :class:`tunix_core.protocols.Trainer`. Returns nothing.
    """


@hookspec
def tunix_register_backends(registry: BackendRegistry) -> None:
    """Register model backends: what loads, generates with, scores, exports and verifies a
    model for one framework.

    Called once when the plugin host starts. The target must implement
    :class:`tunix_core.protocols.ModelBackend`; a run picks one by name in
    ``model.backend``. Returns nothing.
    """


@hookspec
def tunix_register_evaluators(registry: EvaluatorRegistry) -> None:
    """Register evaluators.

    Called once when the plugin host starts. The target must implement
    :class:`tunix_core.protocols.Evaluator`. Returns nothing.
    """


@hookspec
def tunix_register_packagers(registry: PackagerRegistry) -> None:
    """Register packagers that turn a finished run into a submission bundle.

    Called once when the plugin host starts. The target must implement
    :class:`tunix_core.protocols.Packager`. Returns nothing.
    """


@hookspec
def tunix_register_answer_checks(registry: AnswerCheckRegistry) -> None:
    """Register answer checks: the rules that decide whether an extracted answer is correct.

    Called once per plugin host, the first time an answer is scored. Call
    ``registry.register(name, "module:check", description=...)``; the target is a function
    ``check(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict`` (see
    :mod:`tunix_core.evaluation`), or an object with ``takes_meta = True`` that is also
    given ``meta=`` the item's meta (:class:`tunix_core.protocols.ItemAnswerCheck`). An
    item picks a check by name in ``meta.answer_match`` (``auto`` when absent). Returns
    nothing.
    """


@hookspec
def tunix_register_rewards(registry: RewardRegistry) -> None:
    """Register rewards: functions that score a batch of completions for reinforcement
    learning.

    Called once per plugin host, the first time a reward is looked up. Call
    ``registry.register(name, "module:reward", description=...)``; the target must be a
    :class:`tunix_core.protocols.Reward`: one float per completion, NaN where the reward
    does not apply. A trainer weights rewards by name. Returns nothing.
    """


@hookspec
def tunix_register_transforms(registry: TransformRegistry) -> None:
    """Register row transforms: functions that turn one row of a user's file into a tunix
    record (``question``, ``steps`` or ``reasoning``, ``answer``, ...).

    Called once when the plugin host starts. Call ``registry.register(name,
    "module:transform", description=...)``; the target must be a
    :class:`tunix_core.protocols.RowTransform`: ``transform(row) -> row``, raising
    ``ValueError`` for a row it cannot convert. ``jsonl:`` and ``hf:`` apply it to every row
    when ``dataset.options.transform`` names it. Returns nothing.
    """


@hookspec
def tunix_register_commands(cli: TunixGroup) -> None:
    """Add commands or command groups to the ``tunix`` command line.

    Called once while the CLI is assembled, before arguments are parsed. Prefer
    ``cli.add_lazy_command(name, "module:command", short_help)``: the module is imported
    only when the command runs. ``cli.add_command(command)`` works too, but then the
    command's module is imported on every ``tunix`` call. A command that runs a model
    passes ``huge_pages=True`` (or adds its name to ``cli.huge_page_commands``): ``tunix``
    then re-executes itself with glibc's huge pages for it. Returns nothing.
    """


@hookspec
def tunix_run_started(run: RunDirectory, config: dict[str, Any]) -> None:
    """A run has validated its configuration and created its run directory.

    Called once per ``tunix run`` (also on ``--resume``) before the first stage, with the
    run directory and the resolved configuration as plain data. Returns nothing; an
    exception aborts the run before any stage starts.
    """


@hookspec
def tunix_stage_finished(run: RunDirectory, stage: str, seconds: float) -> None:
    """A stage of a run (dataset, baseline, train, evaluate, package) finished.

    Called after the stage's outputs are on disk and the manifest records it. Returns
    nothing.
    """


@hookspec
def tunix_train_step_end(step: int, metrics: dict[str, float], run: RunDirectory) -> None:
    """A trainer finished optimizer step ``step`` (counted from 1 over the whole run).

    Called after every step, on the process that writes the run directory, once the step's
    metrics line and any checkpoint of it are handled. ``metrics`` holds the step's
    ``loss``, ``grad_norm``, ``learning_rate``, ``tokens`` (seen so far),
    ``tokens_per_second`` and ``elapsed_seconds`` (training time so far), as in
    ``metrics.jsonl``; a trainer may add others. Keep it cheap: it runs between steps.
    Returns nothing; an exception stops the run like a failed step.
    """


@hookspec
def tunix_run_finished(run: RunDirectory, status: str, error: BaseException | None) -> None:
    """A run ended with ``status`` ``"succeeded"``, ``"failed"`` or ``"interrupted"``.

    Called once, after the manifest records the status; ``error`` is the exception that
    ended a failed run. Exceptions raised here are logged and ignored. Returns nothing.
    """
