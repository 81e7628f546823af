"""Training checkpoints with orbax-checkpoint's CheckpointManager.

A checkpoint holds the trainable parameters (the LoRA adapters only, or every weight in
a full fine-tune), the optimizer state and a JSON ``meta`` item: the step, the data
stream's position (epoch, cursor), the tokens seen and the training seconds spent.
Saves are asynchronous where orbax supports it; a step's folder appears under its final
name only once it is complete, so a killed process never leaves a half checkpoint that
a resume would pick up. Files can still be damaged later (a full disk, a bad copy), so a
resume takes the newest checkpoint that restores cleanly (:meth:`Checkpointer.newest_good`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

# Longest reason kept for a skipped checkpoint: orbax errors embed whole TensorStore specs.
MAX_REASON_CHARS = 240


@attrs.frozen
class Restored:
    """A checkpoint that passed every check of :meth:`Checkpointer.newest_good`."""

    step: int
    params: Any
    opt_state: Any
    meta: dict[str, Any]


@attrs.frozen
class Skipped:
    """A checkpoint :meth:`Checkpointer.newest_good` passed over, and why."""

    path: Path
    reason: str


def error_reason(exc: BaseException) -> str:
    """The first line of the innermost cause of ``exc``: orbax wraps the useful message
    (which file, which byte range) in generic ones."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    line = (str(exc).strip().splitlines() or [""])[0]
    text = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def tree_problem(restored: Any, expected: Any) -> str | None:
    """Why ``restored`` is not laid out like ``expected`` (structure, shapes, dtypes) or
    holds a value that is not finite; ``None`` when it is good."""
    leaves = [(jax.tree_util.keystr(path), leaf)
              for path, leaf in jax.tree_util.tree_flatten_with_path(restored)[0]]  # fmt: skip
    expected_leaves = jax.tree_util.tree_flatten_with_path(expected)[0]
    if [name for name, _ in leaves] != [jax.tree_util.keystr(path) for path, _ in expected_leaves]:
        return "its parameter tree differs from this configuration's (LoRA, optimizer or model changed?)"
    for (name, got), (_, want) in zip(leaves, expected_leaves, strict=True):
        if got.shape != want.shape or got.dtype != want.dtype:
            return f"{name} is {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"
        if jnp.issubdtype(got.dtype, jnp.inexact) and not bool(jnp.isfinite(got).all()):
            return f"{name} holds values that are not finite"
    return None


class Checkpointer:
    """Saves and restores ``{"params", "opt_state"}`` plus ``meta`` under ``directory``."""

    def __init__(self, directory: Path, *, keep: int, async_save: bool = True) -> None:
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=async_save
        )
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")
        )

    def latest_step(self) -> int | None:
        step = self._manager.latest_step()
        return None if step is None else int(step)

    def all_steps(self) -> list[int]:
        return sorted(int(s) for s in self._manager.all_steps())

    def save(self, step: int, params: Any, opt_state: Any, meta: dict[str, Any]) -> None:
        """Start writing step ``step`` (returns before an async write finishes)."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave({"params": params, "opt_state": opt_state}),
                meta=ocp.args.JsonSave(meta),
            ),
            force=True,
        )

    def restore(
        self, step: int, params_like: Any, opt_state_like: Any
    ) -> tuple[Any, Any, dict[str, Any]]:
        """The state of ``step`` laid out like the given (abstract or concrete) trees,
        shardings included."""
        target = jax.tree.map(
            # jax.ShapeDtypeStruct.__init__ has no annotations, hence the ignore.
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),  # type: ignore[no-untyped-call]
            {"params": params_like, "opt_state": opt_state_like},
        )
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore()
            ),
        )
        state = restored["state"]
        return state["params"], state["opt_state"], dict(restored["meta"])

    def newest_good(
        self, params_like: Any, opt_state_like: Any, meta_problem: Callable[[int, dict[str, Any]], str | None]
    ) -> tuple[Restored | None, list[Skipped]]:
        """The newest checkpoint that restores without error, whose meta ``meta_problem``
        accepts (it returns why not, or ``None``) and whose tree is laid out like the given
        ones with finite values; and the newer checkpoints passed over, newest first.
        ``None`` when no checkpoint is good (or there is none)."""
        skipped: list[Skipped] = []
        for step in reversed(self.all_steps()):
            try:
                params, opt_state, meta = self.restore(step, params_like, opt_state_like)
                problem = meta_problem(step, meta) or tree_problem(
                    {"params": params, "opt_state": opt_state},
                    {"params": params_like, "opt_state": opt_state_like},
                )
            # Damaged files surface as ValueError, OSError or orbax's plain Exception.
            except Exception as exc:
                problem = error_reason(exc)
            if problem is None:
                return Restored(step, params, opt_state, meta), skipped
            skipped.append(Skipped(self.directory / str(step), problem))
        return None, skipped

    def delete(self, step: int) -> None:
        """Remove step ``step`` (a damaged checkpoint that training will write again)."""
        self._manager.delete(step)

    def wait(self) -> None:
        """Block until a pending asynchronous save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
