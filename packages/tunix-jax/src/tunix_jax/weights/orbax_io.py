"""Orbax checkpoints of Gemma parameters, in either layout (see `tunix_jax.models.gemma.params`).

`read_params` reads the upstream layout of Google's Kaggle Flax checkpoints (what
google-tunix's `create_model_from_checkpoint` reads) and the module layout
(`nnx.to_pure_dict(nnx.state(model))`), telling them apart by their keys. It checks every
key and shape against the preset from the checkpoint's metadata before reading any data,
and accepts Kaggle's version folder (`.../flax/gemma3-1b-it/1/`, which holds the
checkpoint folder `gemma3-1b-it/` and `tokenizer.model`) as well as the checkpoint folder.
`save_upstream` writes the upstream layout from host copies of the arrays, so the
checkpoint restores without a target on any device topology.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.errors import WeightsDamagedError, WeightsNotFoundError
from tunix_jax.models.gemma.params import (
    Layout,
    ParamPath,
    SourceTensor,
    check_layout,
    detect_layout,
    from_upstream,
    path_str,
    to_upstream,
)

# Files of which at least one is in every Orbax checkpoint folder, old formats included.
CHECKPOINT_MARKERS = ("_METADATA", "_CHECKPOINT_METADATA", "manifest.ocdbt", "checkpoint")
# tensorstore names the array it failed on: `Error reading "<orbax name>/0.0" in OCDBT ...`.
_FAILED_ARRAY = re.compile(r'"([^"]+)/(?:\.zarray|[\d.]+)"')


def _host(value: Any) -> np.ndarray:
    if isinstance(value, jax.Array) and not value.is_fully_addressable:
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(value, tiled=True))
    return np.asarray(jax.device_get(value))


def save_params(params: Mapping[str, Any], directory: str | os.PathLike[str]) -> Path:
    """Write a nested parameter dict to `directory` (which must not exist yet).

    Arrays are saved as host numpy arrays: a sharded jax.Array would record its device
    mesh, and Orbax then refuses to restore it without a target on another topology.
    """
    import orbax.checkpoint as ocp

    directory = Path(directory).absolute()
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(directory, jax.tree.map(_host, dict(params)))
    checkpointer.wait_until_finished()
    return directory


def save_upstream(
    params: Mapping[Any, Any], config: ModelConfig, directory: str | os.PathLike[str]
) -> Path:
    """Write a module-layout parameter tree as an upstream-layout checkpoint."""
    host = jax.tree.map(_host, dict(params))
    return save_params(to_upstream(host, config), directory)


def _flatten(tree: Any, prefix: ParamPath = ()) -> dict[ParamPath, Any]:
    if not isinstance(tree, Mapping):
        return {prefix: tree}
    flat: dict[ParamPath, Any] = {}
    for key, value in tree.items():
        # Orbax stores list indices as strings; the module layout indexes layers by int.
        part = int(key) if isinstance(key, str) and key.isdigit() else key
        flat.update(_flatten(value, (*prefix, part)))
    return flat


def _is_checkpoint(directory: Path) -> bool:
    return any((directory / marker).exists() for marker in CHECKPOINT_MARKERS)


def find_checkpoint(directory: str | os.PathLike[str]) -> Path:
    """`directory` when it is an Orbax checkpoint, else its only subfolder that is one."""
    directory = Path(directory).absolute()
    if not directory.is_dir():
        raise WeightsNotFoundError(f"Orbax checkpoint not found: {directory}")
    if _is_checkpoint(directory):
        return directory
    inner = [
        child for child in sorted(directory.iterdir()) if child.is_dir() and _is_checkpoint(child)
    ]
    if len(inner) == 1:
        return inner[0]
    if inner:
        names = ", ".join(child.name for child in inner)
        raise WeightsNotFoundError(f"{directory}: several Orbax checkpoints ({names}); name one")
    raise WeightsNotFoundError(
        f"{directory}: no Orbax checkpoint here or in a subfolder "
        f"(none holds {' or '.join(CHECKPOINT_MARKERS)})"
    )


def _metadata(directory: Path) -> dict[ParamPath, Any]:
    import orbax.checkpoint as ocp

    # The handler reads _METADATA itself, without the warning about a missing
    # _CHECKPOINT_METADATA that an item folder of a CheckpointManager step would give.
    handler = ocp.PyTreeCheckpointHandler()
    try:
        tree = handler.metadata(directory).tree
    except (OSError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise WeightsDamagedError(
            f"{directory}: incomplete Orbax checkpoint: its _METADATA is missing or damaged "
            f"({reason})"
        ) from None
    finally:
        handler.close()
    return _flatten(tree)


def checkpoint_shapes(directory: str | os.PathLike[str]) -> dict[ParamPath, tuple[int, ...]]:
    """Parameter paths and shapes of a checkpoint, from its metadata (no array is read)."""
    leaves = _metadata(Path(directory).absolute())
    return {path: tuple(int(n) for n in leaf.shape) for path, leaf in leaves.items()}


def _nest(flat: Mapping[ParamPath, Any], *, key: Any = lambda part: part) -> dict[Any, Any]:
    tree: dict[Any, Any] = {}
    for path, value in flat.items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(key(part), {})
        node[key(path[-1])] = value
    return tree


def _restore(directory: Path, leaves: Mapping[ParamPath, Any], *, partial: bool = False) -> Any:
    """The arrays at `leaves` (paths to metadata) as numpy arrays, whatever mesh the
    checkpoint was saved from."""
    import orbax.checkpoint as ocp

    restore_args = _nest(
        {path: ocp.RestoreArgs(restore_type=np.ndarray) for path in leaves}, key=str
    )
    # A partial restore needs the target tree; np.empty reserves no memory until written.
    item = _nest({p: np.empty(m.shape, m.dtype) for p, m in leaves.items()}, key=str)
    args = ocp.args.PyTreeRestore(
        item=item if partial else None, restore_args=restore_args, partial_restore=partial
    )
    try:
        return ocp.PyTreeCheckpointer().restore(directory, args=args)
    except (OSError, ValueError) as error:
        message = str(error).split(" [tensorstore_spec", 1)[0].splitlines()[0]
        failed = _FAILED_ARRAY.search(message)
        by_name = {".".join(map(str, path)): path for path in leaves}
        path = by_name.get(failed.group(1)) if failed else None
        if path is None:
            raise WeightsDamagedError(
                f"{directory}: cannot read the checkpoint: {message}"
            ) from None
        raise WeightsDamagedError(
            f"{directory}: tensor {path_str(path)!r} (shape {tuple(leaves[path].shape)}) "
            f"cannot be read, the checkpoint is incomplete or damaged: {message}"
        ) from None


def read_tree(directory: str | os.PathLike[str], *, subtree: str | None = None) -> dict[Any, Any]:
    """A checkpoint, or only its top-level entry `subtree`, as nested numpy arrays with
    list indices as ints (the form `nnx.update` takes)."""
    directory = Path(directory).absolute()
    leaves = _metadata(directory)
    if subtree is not None:
        leaves = {path: leaf for path, leaf in leaves.items() if path[0] == subtree}
        if not leaves:
            raise WeightsNotFoundError(f"{directory}: the checkpoint has no {subtree!r}")
    tree = _nest(_flatten(_restore(directory, leaves, partial=subtree is not None)))
    return tree if subtree is None else tree[subtree]


def _checked_leaves(
    directory: str | os.PathLike[str], config: ModelConfig
) -> tuple[Path, Layout, dict[ParamPath, Any]]:
    checkpoint = find_checkpoint(directory)
    leaves = _metadata(checkpoint)
    shapes = {path: tuple(int(n) for n in leaf.shape) for path, leaf in leaves.items()}
    layout = detect_layout(shapes, str(checkpoint))
    check_layout(shapes, config, layout, str(checkpoint))
    return checkpoint, layout, leaves


def check_checkpoint(directory: str | os.PathLike[str], config: ModelConfig) -> Path:
    """The checkpoint folder, once its metadata shows every tensor `config` needs with the
    right shape (no array is read)."""
    return _checked_leaves(directory, config)[0]


def read_params(
    directory: str | os.PathLike[str], config: ModelConfig
) -> dict[ParamPath, SourceTensor]:
    """Module-layout parameters of `config` from an Orbax checkpoint in either layout."""
    checkpoint, layout, leaves = _checked_leaves(directory, config)
    flat = {
        path: SourceTensor(path_str(path), np.asarray(value))
        for path, value in _flatten(_restore(checkpoint, leaves)).items()
    }
    return from_upstream(flat, config) if layout == "upstream" else flat
