"""Moving a model between tunix-jax's ``Transformer`` and google-tunix's Gemma modules, in
memory, and LoRA through qwix.

Both sides hold the same parameter tree (``embedder/input_embedding``,
``layers/<i>/attn/q_einsum/w``, ``layers/<i>/mlp/gate_proj/kernel``, ...). Needs google-tunix
(and qwix for LoRA): import this module only after :func:`tunix_google.requirements.missing`
says nothing is missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import flax
import jax
import jax.numpy as jnp
from flax import nnx

from tunix_jax.export.google_tunix import google_tunix_config
from tunix_jax.models.gemma.transformer import Transformer


def to_google_tunix(model: Transformer, param_dtype: Any) -> nnx.Module:
    """google-tunix's Gemma 3 / Gemma 2 module holding ``model``'s parameters (the same
    arrays, nothing is copied or initialised)."""
    config = model.config
    tunix_config = google_tunix_config(config)
    if config.family == "gemma3":
        from tunix.models.gemma3 import model as gemma3_lib

        tunix_config.param_dtype = param_dtype
        shell = nnx.eval_shape(lambda: gemma3_lib.Gemma3(tunix_config, rngs=nnx.Rngs(0)))
    else:
        from tunix.models.gemma import model as gemma_lib

        shell = nnx.eval_shape(lambda: gemma_lib.Gemma(tunix_config, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(shell)
    nnx.replace_by_pure_dict(state, nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    module: nnx.Module = nnx.merge(graphdef, state)
    return module


def from_google_tunix(module: nnx.Module, like: Transformer, *, lora_scale: float) -> Transformer:
    """A tunix-jax ``Transformer`` of ``like``'s graph holding ``module``'s parameters, with
    any LoRA adapters (``alpha / rank`` = ``lora_scale``) merged into the weights they adapt
    (``module`` is left as it is)."""
    pure = merged_params(module, lora_scale)
    graphdef, state = nnx.split(like)
    state = jax.tree.map(lambda array: array, state)  # new variables: ``like`` keeps its own
    nnx.replace_by_pure_dict(state, pure)
    merged: Transformer = nnx.merge(graphdef, state)
    return merged


def merged_params(module: nnx.Module, lora_scale: float) -> dict[str, Any]:
    """``module``'s parameters as a pure dict, each qwix LoRA pair (``<name>_lora_a``,
    ``<name>_lora_b`` beside the weight ``<name>``) added into its weight and left out.

    qwix's adapter of a weight whose einsum reads ``lhs,rhs->out`` computes
    ``einsum(lhs, a, b) * alpha / rank`` with ``a`` holding the rhs axes shared with the
    lhs (in rhs order) then the rank, and ``b`` the rank then the other rhs axes, so the
    weight's delta is ``einsum(a, b -> rhs) * alpha / rank``; an ``nnx.Linear`` kernel
    ``[in, out]`` gets ``a @ b * alpha / rank``.
    """
    pure = nnx.to_pure_dict(nnx.state(module, nnx.Param))
    flat = flax.traverse_util.flatten_dict(pure)  # type: ignore[no-untyped-call]  # unannotated in flax
    einsum_of = _lora_einsums(module)
    out: dict[tuple[Any, ...], Any] = {}
    for path, value in flat.items():
        name = str(path[-1])
        if name.endswith(("_lora_a", "_lora_b")):
            continue
        lora_a = flat.get((*path[:-1], f"{name}_lora_a"))
        if lora_a is None:
            out[path] = value
            continue
        lora_b = flat[(*path[:-1], f"{name}_lora_b")]
        delta = _lora_delta(einsum_of[path[:-1]], jnp.asarray(lora_a), jnp.asarray(lora_b),
                            value.shape) * lora_scale  # fmt: skip
        out[path] = (value + delta.astype(value.dtype)).astype(value.dtype)
    unflat: dict[str, Any] = flax.traverse_util.unflatten_dict(out)  # type: ignore[no-untyped-call]  # unannotated in flax
    return unflat


def _lora_einsums(module: nnx.Module) -> dict[tuple[Any, ...], str | None]:
    """The einsum string of each LoRA-wrapped submodule by its path (None: nnx.Linear)."""
    found: dict[tuple[Any, ...], str | None] = {}
    for path, sub in nnx.iter_graph(module):
        if isinstance(sub, nnx.Module) and any(
            name.endswith("_lora_a") for name in vars(sub) if isinstance(name, str)
        ):
            found[tuple(path)] = getattr(sub, "einsum_str", None)
    return found


def _lora_delta(
    einsum_str: str | None, lora_a: jax.Array, lora_b: jax.Array, shape: Sequence[int]
) -> jax.Array:
    """The weight's delta ``a`` x ``b`` (unscaled) in the weight's axes."""
    if einsum_str is None:  # nnx.Linear: kernel [in, out]
        return (lora_a @ lora_b).reshape(shape)
    lhs, rhs = einsum_str.replace("...", "").split("->")[0].split(",")
    rank_char = next(c for c in "rqzyxwvu" if c not in lhs + rhs)
    shared = "".join(c for c in rhs if c in lhs)
    rest = "".join(c for c in rhs if c not in lhs)
    dims = dict(zip(rhs, shape, strict=True))
    a = lora_a.reshape(*(dims[c] for c in shared), lora_a.shape[-1])
    b = lora_b.reshape(lora_b.shape[0], *(dims[c] for c in rest))
    delta: jax.Array = jnp.einsum(f"{shared}{rank_char},{rank_char}{rest}->{rhs}", a, b)
    return delta


def lora_pattern(targets: Sequence[str]) -> str:
    """The qwix ``module_path`` regex of the projections named ``targets``."""
    return ".*(" + "|".join(re.escape(t) for t in targets) + ")$"


def apply_lora(
    module: nnx.Module, targets: Sequence[str], *, rank: int, alpha: float, seed: int,
    batch: int, length: int,
) -> nnx.Module:  # fmt: skip
    """``module`` with qwix LoRA adapters (``a`` random, ``b`` zero) on ``targets``."""
    import qwix

    provider = qwix.LoraProvider(module_path=lora_pattern(targets), rank=rank, alpha=alpha)
    tokens = jnp.ones((batch, length), jnp.int32)
    mask = jnp.tril(jnp.ones((batch, length, length), bool))
    positions = jnp.broadcast_to(jnp.arange(length), (batch, length))
    lora: nnx.Module = qwix.apply_lora_to_model(
        module, provider, tokens, positions, None, mask, rngs=nnx.Rngs(seed)
    )
    return lora
