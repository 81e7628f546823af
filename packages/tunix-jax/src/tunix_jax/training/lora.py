"""Low-rank adapters on the projections of a Gemma :class:`Transformer`.

A wrapped projection computes ``base(x) + (alpha / rank) * (x A) B`` with ``A`` of the
input's contracted dimensions x rank and ``B`` of rank x the weight's other dimensions,
so neither the frozen weight's gradient nor a full-size weight delta is ever formed.
``A`` starts random and ``B`` at zero: a fresh adapter leaves the model unchanged. The
adapters are :class:`flax.nnx.LoRAParam` variables, which lets the trainer split them
from the frozen :class:`flax.nnx.Param` weights. :func:`merge_lora` folds them into the
base weights and restores the plain module tree (the Tunix layout) for export.

:class:`LoraAdapters` keeps trained adapters on their own (a few MB beside a merged
model of GB): an Orbax checkpoint ``params/`` of the ``lora_a``/``lora_b`` values under
the module path of the projection they wrap (``layers/0/attn/q_einsum/lora_a``), and
``adapter_config.json`` with rank, alpha and targets. :func:`load_adapters` puts them back
on a base model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from tunix_core.errors import ConfigError
from tunix_jax.models.gemma.layers import Einsum
from tunix_jax.weights import random_init
from tunix_jax.weights.orbax_io import read_tree, save_params

ADAPTERS_FORMAT = "tunix-lora-adapters"
ADAPTER_CONFIG_FILENAME = "adapter_config.json"
ADAPTER_PARAMS_DIRNAME = "params"


def _a_shape(base: Einsum | nnx.Linear, rank: int) -> tuple[int, ...]:
    """``A``'s shape: the weight's dimensions contracted with the input, then `rank`."""
    if isinstance(base, nnx.Linear):
        return (base.kernel.shape[0], rank)
    return (*random_init.einsum_contracted_shape(base), rank)


def _initial_a(seed: int, named: Sequence[tuple[str, tuple[int, ...]]]) -> list[jax.Array]:
    """``A`` of each adapter (named by its projection's module path): normal with deviation
    1/sqrt(fan in), from `random_init`'s generator, all in one call (B starts at zero)."""
    draws = [random_init.Draw(f"lora/{name}/lora_a", shape, 1.0 / math.sqrt(math.prod(shape[:-1])))
             for name, shape in named]  # fmt: skip
    return random_init.draw_many(seed, draws)


def _rank_letter(used: str) -> str:
    return next(c for c in "rzyxwvu" if c not in used)


class LoRAEinsum(nnx.Module):
    """An :class:`Einsum` plus a low-rank update with the same input and output shapes."""

    def __init__(self, base: Einsum, *, alpha: float, lora_a: jax.Array):
        rank = lora_a.shape[-1]
        inputs, rest = base.equation.split(",")
        weight, output = rest.split("->")
        contracted = [c for c in weight if c in inputs and c not in output]
        kept = [c for c in weight if c not in contracted]
        r = _rank_letter(base.equation)
        middle = "".join(c for c in inputs if c not in contracted) + r
        self.down_equation = f"{inputs},{''.join(contracted)}{r}->{middle}"
        self.up_equation = f"{middle},{r}{''.join(kept)}->{output}"
        self.merge_equation = f"{''.join(contracted)}{r},{r}{''.join(kept)}->{weight}"
        shape = dict(zip(weight, base.w[...].shape, strict=True))
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nnx.LoRAParam(lora_a)
        self.lora_b = nnx.LoRAParam(random_init.zeros((rank, *(shape[c] for c in kept))))

    def __call__(self, x: jax.Array) -> jax.Array:
        dtype = self.base.dtype
        down = jnp.einsum(self.down_equation, x.astype(dtype), self.lora_a[...].astype(dtype))
        update = jnp.einsum(self.up_equation, down, self.lora_b[...].astype(dtype))
        return self.base(x) + update * jnp.asarray(self.scale, dtype)

    def merged(self) -> Einsum:
        delta = jnp.einsum(self.merge_equation, self.lora_a[...], self.lora_b[...]) * self.scale
        w = self.base.w[...]
        self.base.w[...] = (w.astype(jnp.float32) + delta).astype(w.dtype)
        return self.base


class LoRALinear(nnx.Module):
    """An :class:`nnx.Linear` (kernel [in, out], no bias) plus a low-rank update."""

    def __init__(self, base: nnx.Linear, *, alpha: float, lora_a: jax.Array):
        rank = lora_a.shape[-1]
        fan_out = base.kernel.shape[1]
        self.base = base
        self.scale = alpha / rank
        self.lora_a = nnx.LoRAParam(lora_a)
        self.lora_b = nnx.LoRAParam(random_init.zeros((rank, fan_out)))

    def __call__(self, x: jax.Array) -> jax.Array:
        dtype = self.base.dtype or x.dtype
        down = x.astype(dtype) @ self.lora_a[...].astype(dtype)
        update = down @ self.lora_b[...].astype(dtype)
        return self.base(x) + update * jnp.asarray(self.scale, dtype)

    def merged(self) -> nnx.Linear:
        delta = (self.lora_a[...] @ self.lora_b[...]) * self.scale
        kernel = self.base.kernel[...]
        self.base.kernel[...] = (kernel.astype(jnp.float32) + delta).astype(kernel.dtype)
        return self.base


def _projections(
    model: nnx.Module,
) -> list[tuple[nnx.Module, str, Einsum | nnx.Linear, str]]:
    """(parent, attribute, module, module path) for every Einsum / Linear attribute in the
    model; the path is slash-joined (``layers/0/attn/q_einsum``)."""
    found: list[tuple[nnx.Module, str, Einsum | nnx.Linear, str]] = []
    for parent_path, parent in nnx.iter_modules(model):
        for name, child in vars(parent).items():
            if isinstance(child, Einsum | nnx.Linear):
                found.append((parent, name, child, "/".join(map(str, (*parent_path, name)))))
    return found


def projection_names(model: nnx.Module) -> set[str]:
    """Attribute names a LoRA target may use (``q_einsum``, ``gate_proj``, ...)."""
    return {name for _, name, _, _ in _projections(model)}


def apply_lora(
    model: nnx.Module, targets: Sequence[str], *, rank: int, alpha: float, seed: int
) -> int:
    """Wrap every projection named in ``targets`` in place; returns how many were wrapped.

    A target that names no projection of the model raises a ConfigError naming
    ``trainer.options.lora_targets``.
    """
    available = projection_names(model)
    unknown = sorted(set(targets) - available)
    if unknown:
        raise ConfigError(
            f"trainer.options.lora_targets: {', '.join(map(repr, unknown))} not in this model; "
            f"available: {', '.join(sorted(available))}"
        )
    chosen = [found for found in _projections(model) if found[1] in targets]
    initial = _initial_a(seed, [(path, _a_shape(module, rank)) for _, _, module, path in chosen])
    for (parent, name, module, _), lora_a in zip(chosen, initial, strict=True):
        if isinstance(module, Einsum):
            adapter: nnx.Module = LoRAEinsum(module, alpha=alpha, lora_a=lora_a)
        else:
            adapter = LoRALinear(module, alpha=alpha, lora_a=lora_a)
        setattr(parent, name, adapter)
    return len(chosen)


def merge_lora(model: nnx.Module) -> int:
    """Fold every adapter into its base weight and unwrap it, in place; returns how many."""
    adapters = [
        (parent, name, child)
        for _, parent in nnx.iter_modules(model)
        for name, child in vars(parent).items()
        if isinstance(child, LoRAEinsum | LoRALinear)
    ]
    for parent, name, adapter in adapters:
        setattr(parent, name, adapter.merged())
    return len(adapters)


@dataclasses.dataclass(frozen=True)
class LoraAdapters:
    """Trained adapters: the nested ``lora_a``/``lora_b`` values of every wrapped
    projection (module paths) and the settings they were trained with."""

    params: Mapping[Any, Any]
    rank: int
    alpha: float
    targets: tuple[str, ...]

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``params/`` and ``adapter_config.json`` to ``directory`` (created)."""
        directory = Path(directory)
        directory.mkdir(parents=True)
        save_params(self.params, directory / ADAPTER_PARAMS_DIRNAME)
        config = {
            "format": ADAPTERS_FORMAT,
            "rank": self.rank,
            "alpha": self.alpha,
            "targets": list(self.targets),
            "params": ADAPTER_PARAMS_DIRNAME,
            "merge": "w + (alpha / rank) * lora_a @ lora_b, contracting the rank axis",
        }
        text = json.dumps(config, indent=1, sort_keys=True) + "\n"
        (directory / ADAPTER_CONFIG_FILENAME).write_text(text, encoding="utf-8")
        return directory


def load_adapters(model: nnx.Module, directory: str | os.PathLike[str]) -> int:
    """Wrap ``model``'s projections as the adapters in ``directory`` were trained and give
    them the saved values; returns how many were wrapped (:func:`merge_lora` folds them in)."""
    directory = Path(directory)
    config = json.loads((directory / ADAPTER_CONFIG_FILENAME).read_text(encoding="utf-8"))
    if config.get("format") != ADAPTERS_FORMAT:
        raise ConfigError(f"{directory}: not a {ADAPTERS_FORMAT} folder")
    wrapped = apply_lora(
        model, config["targets"], rank=config["rank"], alpha=config["alpha"], seed=0
    )
    nnx.update(model, read_tree(directory / config["params"]))
    return wrapped
