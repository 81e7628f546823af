"""The Tunix parameter layout: paths, expected shapes, and checks on a loaded tree.

Every weight source (GGUF, safetensors, Orbax) produces a flat mapping from a parameter
path such as `("layers", 0, "attn", "q_einsum", "w")` to a numpy array, and this module
turns it into the nested dict `nnx.update` takes, failing with a message that names the
source file and tensor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from tunix_jax.model.config import ModelConfig
from tunix_jax.model.errors import WeightsNotFoundError, WeightsShapeError

ParamPath = tuple[str | int, ...]


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
        node = tree
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
        flat[param] = SourceTensor(name, np.ascontiguousarray(value, dtype=np.float32))

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
