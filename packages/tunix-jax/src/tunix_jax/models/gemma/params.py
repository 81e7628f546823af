"""The two Gemma parameter layouts, their expected shapes, and checks on a loaded tree.

The **module layout** is the parameter tree of google-tunix's Gemma modules and of our
`Transformer` (`nnx.to_pure_dict(nnx.state(model))`): `("layers", 0, "attn", "q_einsum",
"w")`. Every weight source (GGUF, safetensors, Orbax) produces a flat mapping from such
paths to numpy arrays, and `build_tree` turns it into the nested dict `nnx.update` takes,
failing with a message that names the source file and tensor.

The **upstream layout** is Google's Flax Gemma checkpoints on Kaggle, which google-tunix
reads with `gemma3.params.create_model_from_checkpoint` / `gemma.params.
load_and_format_params`: a flat top level of slash-joined module names, each holding its
parameters, `{"transformer/layer_0/attn/q_einsum": {"w": ...}}`. It differs from the
module layout in three places: the MLP's gate and up projections are one
`mlp/gating_einsum` ([2, F, D] in Gemma 3, [2, D, F] in Gemma 2), the down projection is
`mlp/linear`, and Gemma 2's `post_attn_norm` is `post_attention_norm`. Gemma 2's
embedding has 128 padding rows there (`ModelConfig.upstream_vocab_size`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

import numpy as np

from tunix_jax.models.gemma.config import ModelConfig
from tunix_jax.models.gemma.errors import WeightsNotFoundError, WeightsShapeError

ParamPath = tuple[str | int, ...]
Layout = Literal["upstream", "module"]
UPSTREAM_ROOT = "transformer"
_EMBEDDING: ParamPath = ("embedder", "input_embedding")
_UPSTREAM_EMBEDDING: ParamPath = (f"{UPSTREAM_ROOT}/embedder", "input_embedding")


# XLA's CPU client wraps a host array whose data starts on a 64-byte boundary without
# copying it (`jax.device_put`), so weights read from files are laid out that way.
_DEVICE_ALIGNMENT = 64


def empty_aligned(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised C-contiguous float32 array whose data is 64-byte aligned."""
    size = int(np.prod(shape, dtype=np.int64)) * 4
    buffer = np.empty(size + _DEVICE_ALIGNMENT, np.uint8)
    start = -buffer.ctypes.data % _DEVICE_ALIGNMENT
    return buffer[start : start + size].view(np.float32).reshape(shape)


def aligned_float32(value: np.ndarray) -> np.ndarray:
    """`value` as a C-contiguous, 64-byte-aligned float32 array: itself when it is one,
    else a copy (cast as `astype` casts)."""
    if (
        value.dtype == np.float32
        and value.flags.c_contiguous
        and value.ctypes.data % _DEVICE_ALIGNMENT == 0
    ):
        return value
    out = empty_aligned(value.shape)
    np.copyto(out, value, casting="unsafe")
    return out


@dataclasses.dataclass(frozen=True)
class SourceTensor:
    """A tensor read from a weights file, with the name it has there (for error messages)."""

    name: str
    value: np.ndarray


def path_str(path: ParamPath) -> str:
    return "/".join(str(part) for part in path)


def expected_shapes(config: ModelConfig) -> dict[ParamPath, tuple[int, ...]]:
    """Parameter paths and shapes of `Transformer(config)` in the Tunix layout."""
    d, f = config.embed_dim, config.hidden_dim
    n, k, h = config.num_heads, config.num_kv_heads, config.head_dim
    shapes: dict[ParamPath, tuple[int, ...]] = {
        ("embedder", "input_embedding"): (config.vocab_size, d),
        ("final_norm", "scale"): (d,),
    }
    for i in range(config.num_layers):
        attn: dict[str, tuple[int, ...]] = {"attn_vec_einsum": (n, h, d)}
        if config.uses_fused_qkv:
            attn["qkv_einsum"] = (3, n, d, h)
        else:
            attn["q_einsum"] = (n, d, h)
            attn["kv_einsum"] = (2, k, d, h)
        for name, shape in attn.items():
            shapes[("layers", i, "attn", name, "w")] = shape
        if config.use_qk_norm:
            shapes[("layers", i, "attn", "_query_norm", "scale")] = (h,)
            shapes[("layers", i, "attn", "_key_norm", "scale")] = (h,)
        shapes[("layers", i, "mlp", "gate_proj", "kernel")] = (d, f)
        shapes[("layers", i, "mlp", "up_proj", "kernel")] = (d, f)
        shapes[("layers", i, "mlp", "down_proj", "kernel")] = (f, d)
        for norm in (
            "pre_attention_norm",
            config.post_attention_norm_name,
            "pre_ffw_norm",
            "post_ffw_norm",
        ):
            shapes[("layers", i, norm, "scale")] = (d,)
    return shapes


def _upstream_key(path: ParamPath, config: ModelConfig) -> ParamPath:
    """The upstream name of a module-layout parameter other than gate_proj/up_proj."""
    *module, name = map(str, path)
    if module[0] == "layers":
        module = [f"layer_{module[1]}", *module[2:]]
        if module[1:] == [config.post_attention_norm_name]:
            module[1] = "post_attention_norm"
        elif module[1:] == ["mlp", "down_proj"]:
            module[2], name = "linear", "w"
    return ("/".join([UPSTREAM_ROOT, *module]), name)


def _gating_key(layer: int) -> ParamPath:
    return (f"{UPSTREAM_ROOT}/layer_{layer}/mlp/gating_einsum", "w")


def _gating_shape(config: ModelConfig) -> tuple[int, ...]:
    d, f = config.embed_dim, config.hidden_dim
    return (2, f, d) if config.family == "gemma3" else (2, d, f)


def upstream_shapes(config: ModelConfig) -> dict[ParamPath, tuple[int, ...]]:
    """Parameter keys and shapes of `config` in the upstream (Kaggle Flax) layout."""
    shapes: dict[ParamPath, tuple[int, ...]] = {}
    for path, shape in expected_shapes(config).items():
        if path == _EMBEDDING:
            shapes[_UPSTREAM_EMBEDDING] = (config.checkpoint_vocab_size, config.embed_dim)
        elif path[-2] == "gate_proj":
            shapes[_gating_key(int(path[1]))] = _gating_shape(config)
        elif path[-2] != "up_proj":
            shapes[_upstream_key(path, config)] = shape
    return shapes


def _lookup(tree: Mapping[Any, Any], path: ParamPath) -> Any:
    node: Any = tree
    for part in path:
        # Layer indices are ints in a live model's tree and strings once serialised.
        node = node[part] if part in node else node[str(part)]
    return node


def to_upstream(params: Mapping[Any, Any], config: ModelConfig) -> dict[str, dict[str, Any]]:
    """A module-layout tree of numpy arrays as the nested dict of the upstream layout,
    the embedding padded with zero rows to `config.checkpoint_vocab_size`."""
    out: dict[str, dict[str, Any]] = {}
    for path in expected_shapes(config):
        if path[-2] == "up_proj":
            continue
        value = np.asarray(_lookup(params, path))
        if path[-2] == "gate_proj":
            up = np.asarray(_lookup(params, (*path[:-2], "up_proj", "kernel")))
            # Gemma 3 checkpoints store the MLP input projections transposed.
            pair = (value.T, up.T) if config.family == "gemma3" else (value, up)
            module, name = map(str, _gating_key(int(path[1])))
            out.setdefault(module, {})[name] = np.stack(pair)
            continue
        if path == _EMBEDDING and config.checkpoint_vocab_size > config.vocab_size:
            padding = np.zeros((config.checkpoint_vocab_size - config.vocab_size, value.shape[1]))
            value = np.concatenate([value, padding.astype(value.dtype)])
        module, name = map(str, _upstream_key(path, config))
        out.setdefault(module, {})[name] = value
    return out


def from_upstream(
    flat: Mapping[ParamPath, SourceTensor], config: ModelConfig
) -> dict[ParamPath, SourceTensor]:
    """Module-layout tensors from upstream-layout ones whose keys and shapes
    `check_layout` has accepted; the embedding's padding rows are dropped."""
    out: dict[ParamPath, SourceTensor] = {}
    for path in expected_shapes(config):
        if path[-2] in ("gate_proj", "up_proj"):
            gating = flat[_gating_key(int(path[1]))]
            index = 0 if path[-2] == "gate_proj" else 1
            value = gating.value[index]
            out[path] = SourceTensor(
                f"{gating.name}[{index}]", value.T if config.family == "gemma3" else value
            )
            continue
        tensor = flat[_UPSTREAM_EMBEDDING if path == _EMBEDDING else _upstream_key(path, config)]
        if path == _EMBEDDING:
            tensor = SourceTensor(tensor.name, tensor.value[: config.vocab_size])
        out[path] = tensor
    return out


def detect_layout(paths: Collection[ParamPath], source: str) -> Layout:
    """Which of the two layouts a checkpoint with these parameter paths uses."""
    tops = sorted({str(path[0]) for path in paths})
    if any(top.startswith(f"{UPSTREAM_ROOT}/") for top in tops):
        return "upstream"
    if {"embedder", "layers"} <= set(tops):
        return "module"
    found = ", ".join(repr(top) for top in tops[:4]) or "nothing"
    raise WeightsNotFoundError(
        f"{source}: not a Gemma checkpoint: expected keys like 'transformer/embedder' "
        f"(upstream layout) or 'embedder' and 'layers' (module layout), found {found}"
    )


def _layers_in(paths: Collection[ParamPath], layout: Layout) -> set[int]:
    if layout == "module":
        return {int(p[1]) for p in paths if p[0] == "layers" and len(p) > 1}
    matches = (re.match(rf"{UPSTREAM_ROOT}/layer_(\d+)/", str(p[0])) for p in paths)
    return {int(m.group(1)) for m in matches if m}


def layout_problems(
    found: Mapping[ParamPath, tuple[int, ...]], config: ModelConfig, layout: Layout
) -> list[tuple[type[Exception], str]]:
    """Every way the parameter shapes `found` in a checkpoint of `layout` miss `config`:
    ``(error class, message)``, missing and misshapen tensors first, in model order."""
    if layout == "upstream":
        expected = upstream_shapes(config)
        # An upstream checkpoint without the padding rows is fine too.
        accepted = {_UPSTREAM_EMBEDDING: (config.vocab_size, config.embed_dim)}
    else:
        expected, accepted = expected_shapes(config), {}
    preset = f"model preset {config.name!r}"
    problems: list[tuple[type[Exception], str]] = []
    for path, shape in expected.items():
        name = path_str(path)
        if path not in found:
            message = f"tensor {name!r} is missing ({preset} expects shape {shape})"
            problems.append((WeightsNotFoundError, message))
        elif tuple(found[path]) not in (shape, accepted.get(path)):
            message = (
                f"tensor {name!r} has shape {tuple(found[path])}, but {preset} expects {shape}"
            )
            problems.append((WeightsShapeError, message))
    for path in found:
        if path not in expected:
            problems.append(
                (WeightsShapeError, f"tensor {path_str(path)!r} is not part of {preset}")
            )
    return problems


def _mismatch_hints(found: Collection[ParamPath], config: ModelConfig, layout: Layout) -> str:
    hints = []
    has_qk_norm = any("_query_norm" in path_str(path) for path in found)
    if config.use_qk_norm and not has_qk_norm:
        hints.append(
            f"the checkpoint has no query/key norms, like Gemma 2, but preset {config.name!r} "
            "is Gemma 3"
        )
    elif has_qk_norm and not config.use_qk_norm:
        hints.append(
            f"the checkpoint has query/key norms, like Gemma 3, but preset {config.name!r} "
            "is Gemma 2"
        )
    layers = len(_layers_in(found, layout))
    if layers != config.num_layers:
        hints.append(f"it has {layers} layers, the preset {config.num_layers}")
    return "".join(f"; {hint}" for hint in hints)


def check_layout(
    found: Mapping[ParamPath, tuple[int, ...]], config: ModelConfig, layout: Layout, source: str
) -> None:
    """Raise, naming `source` and the first tensor that is wrong, unless a checkpoint with
    these parameter shapes fits `config`."""
    problems = layout_problems(found, config, layout)
    if problems:
        error, message = problems[0]
        raise error(f"{source}: {message}{_mismatch_hints(found, config, layout)}")


def check_source_shape(
    source: str, tensor: str, value: np.ndarray, expected: tuple[int, ...], config: ModelConfig
) -> None:
    """Raise WeightsShapeError when a tensor read from `source` has the wrong shape."""
    if tuple(value.shape) != tuple(expected):
        raise WeightsShapeError(
            f"{source}: tensor {tensor!r} has shape {tuple(value.shape)}, but model preset "
            f"{config.name!r} expects {tuple(expected)}"
        )


def build_tree(
    flat: dict[ParamPath, SourceTensor], config: ModelConfig, source: str
) -> dict[str, Any]:
    """Nested parameter dict for `nnx.update`, after checking every path and shape."""
    expected = expected_shapes(config)
    missing = [path for path in expected if path not in flat]
    if missing:
        raise WeightsNotFoundError(
            f"{source}: no tensor for {path_str(missing[0])} (model preset {config.name!r}); "
            f"{len(missing)} parameter(s) missing"
        )
    tree: dict[str, Any] = {}
    for path, shape in expected.items():
        tensor = flat[path]
        check_source_shape(source, tensor.name, tensor.value, shape, config)
        node: dict[Any, Any] = tree  # below the top, keys are str or int (layer indices)
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = tensor.value
    return tree


# Roles of the tensors in one block of a torch-style checkpoint (Linear weights [out, in]).
BLOCK_ROLES = (
    "q",
    "k",
    "v",
    "o",
    "gate",
    "up",
    "down",
    "pre_attn_norm",
    "post_attn_norm",
    "pre_ffw_norm",
    "post_ffw_norm",
    "q_norm",
    "k_norm",
)


def convert_linear_layout(
    load: Callable[[str, tuple[int, ...]], np.ndarray],
    *,
    embedding: str,
    final_norm: str,
    block_tensor: Callable[[int, str], str],
    config: ModelConfig,
    norm_offset: float = 0.0,
) -> dict[ParamPath, SourceTensor]:
    """Flat Tunix parameters from a checkpoint laid out like Hugging Face's Gemma.

    `load(name, shape)` returns the named tensor as float32 after checking its shape;
    `block_tensor(layer, role)` names a block's tensor; `norm_offset` is subtracted from
    every norm scale (1 for llama.cpp files, which store 1 + w).
    """
    d, f = config.embed_dim, config.hidden_dim
    n, k, h = config.num_heads, config.num_kv_heads, config.head_dim
    flat: dict[ParamPath, SourceTensor] = {}

    def put(param: ParamPath, name: str, value: np.ndarray) -> None:
        flat[param] = SourceTensor(name, aligned_float32(value))

    def heads(role: str, layer: int, count: int) -> np.ndarray:
        # [count * H, D] -> [count, D, H]: heads are the leading blocks of the output axis.
        name = block_tensor(layer, role)
        return load(name, (count * h, d)).reshape(count, h, d).transpose(0, 2, 1)

    def norm(name: str, size: int) -> np.ndarray:
        return load(name, (size,)) - norm_offset

    put(("embedder", "input_embedding"), embedding, load(embedding, (config.vocab_size, d)))
    put(("final_norm", "scale"), final_norm, norm(final_norm, d))
    for i in range(config.num_layers):
        attn: ParamPath = ("layers", i, "attn")
        q, key, value = heads("q", i, n), heads("k", i, k), heads("v", i, k)
        if config.uses_fused_qkv:
            put((*attn, "qkv_einsum", "w"), block_tensor(i, "q"), np.stack([q, key, value]))
        else:
            put((*attn, "q_einsum", "w"), block_tensor(i, "q"), q)
            put((*attn, "kv_einsum", "w"), block_tensor(i, "k"), np.stack([key, value]))
        out_name = block_tensor(i, "o")
        out = load(out_name, (d, n * h)).reshape(d, n, h).transpose(1, 2, 0)
        put((*attn, "attn_vec_einsum", "w"), out_name, out)
        for role, proj, shape in (
            ("gate", "gate_proj", (f, d)),
            ("up", "up_proj", (f, d)),
            ("down", "down_proj", (d, f)),
        ):
            name = block_tensor(i, role)
            put(("layers", i, "mlp", proj, "kernel"), name, load(name, shape).T)
        norms: list[tuple[str, ParamPath, int]] = [
            ("pre_attn_norm", ("pre_attention_norm",), d),
            ("post_attn_norm", (config.post_attention_norm_name,), d),
            ("pre_ffw_norm", ("pre_ffw_norm",), d),
            ("post_ffw_norm", ("post_ffw_norm",), d),
        ]
        if config.use_qk_norm:
            norms += [("q_norm", ("attn", "_query_norm"), h), ("k_norm", ("attn", "_key_norm"), h)]
        for role, module, size in norms:
            name = block_tensor(i, role)
            put(("layers", i, *module, "scale"), name, norm(name, size))
    return flat
