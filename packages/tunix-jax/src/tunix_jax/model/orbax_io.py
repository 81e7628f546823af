"""Orbax checkpoints of the parameters in the Tunix layout.

`save_params` writes `nnx.to_pure_dict(nnx.state(model, nnx.Param))` with Orbax's
StandardCheckpointer, the layout google-tunix restores into its Gemma modules
(`embedder/input_embedding`, `layers/<i>/attn/q_einsum/w`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tunix_jax.model.errors import WeightsNotFoundError
from tunix_jax.model.params import ParamPath, SourceTensor, path_str


def save_params(params: dict[str, Any], directory: str | os.PathLike[str]) -> Path:
    """Write a nested parameter dict to `directory` (which must not exist yet)."""
    import orbax.checkpoint as ocp

    directory = Path(directory).absolute()
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(directory, params)
    checkpointer.wait_until_finished()
    return directory


def _flatten(tree: Any, prefix: ParamPath = ()) -> dict[ParamPath, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[ParamPath, Any] = {}
    for key, value in tree.items():
        # Orbax stores list indices as strings; the Tunix tree indexes layers by int.
        part = int(key) if isinstance(key, str) and key.isdigit() else key
        flat.update(_flatten(value, (*prefix, part)))
    return flat


def read_params(directory: str | os.PathLike[str]) -> dict[ParamPath, SourceTensor]:
    """Flat parameters restored from an Orbax checkpoint written by `save_params`."""
    import orbax.checkpoint as ocp

    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise WeightsNotFoundError(f"Orbax checkpoint not found: {directory}")
    try:
        restored = ocp.StandardCheckpointer().restore(directory)
    except (FileNotFoundError, ValueError) as error:
        raise WeightsNotFoundError(
            f"{directory}: not a readable Orbax checkpoint ({error})"
        ) from error
    return {
        path: SourceTensor(path_str(path), np.asarray(value))
        for path, value in _flatten(restored).items()
    }
