"""Training checkpoints with orbax-checkpoint's CheckpointManager.

A checkpoint holds the trainable parameters (the LoRA adapters only, or every weight in
a full fine-tune), the optimizer state and a JSON ``meta`` item: the step, the data
stream's position (epoch, cursor), the tokens seen and the training seconds spent.
Saves are asynchronous where orbax supports it; a step's folder appears under its final
name only once it is complete, so a killed process never leaves a half checkpoint that
a resume would pick up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


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

    def wait(self) -> None:
        """Block until a pending asynchronous save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()
