"""Fixtures shared by the tunix-jax tests: the ``tunix`` command line with tunix-jax's
plugin, tiny random models and a GGUF writer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from tunix_core import builtin
from tunix_core.cli import cli
from tunix_core.command_group import TunixGroup
from tunix_core.plugins import PluginHost
from tunix_jax import plugin


@pytest.fixture(scope="module")
def tunix() -> Callable[..., Result]:
    """``tunix ARGS`` with the core's commands and tunix-jax's plugin (its backend,
    trainer and commands), through the real Click host."""
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(plugin, "jax", "tunix-jax")
    host.fill_registries()
    group = TunixGroup("tunix", commands=dict(cli.commands))
    group.lazy_commands.update(cli.lazy_commands)
    host.register_commands(group)

    def invoke(*args: object) -> Result:
        return CliRunner().invoke(group, [str(a) for a in args], obj=host)

    return invoke


def randomize_norms(model, seed: int = 0, scale: float = 0.5) -> None:
    """Give every norm scale random values: zero-init norms hide layout mistakes."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from tunix_jax.models.gemma.layers import RMSNorm

    rng = np.random.default_rng(seed)
    for _, module in nnx.iter_graph(model):
        if isinstance(module, RMSNorm):
            shape = module.scale[...].shape
            module.scale[...] = jnp.asarray(rng.normal(0, scale, shape), module.scale[...].dtype)
    jax.block_until_ready(nnx.state(model))


def make_tiny(preset: str = "tiny-gemma3", seed: int = 0):
    """(model, tokenizer) of a random tiny preset with random norm scales."""
    from tunix_jax.weights.loading import load_model

    model, tokenizer = load_model(preset, "random", seed=seed)
    randomize_norms(model, seed)
    return model, tokenizer


@pytest.fixture
def tiny_model():
    """A factory of fresh tiny models, free to modify."""
    return make_tiny


@pytest.fixture(scope="session")
def shared_sampler():
    """A factory of Samplers over tiny models, shared (with their compilations) by tests
    that only read them."""
    from tunix_jax.models.gemma.sampler import Sampler

    samplers = {}

    def get(preset: str = "tiny-gemma3", seed: int = 0):
        if (preset, seed) not in samplers:
            samplers[preset, seed] = Sampler(*make_tiny(preset, seed))
        return samplers[preset, seed]

    return get


def gguf_tensors(model) -> dict[str, np.ndarray]:
    """The model's parameters under llama.cpp's names and layout (norms stored as 1 + w)."""
    from tunix_jax.weights.loading import model_params

    cfg = model.config
    params = model_params(model)
    n, k, h, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.embed_dim
    out = {
        "token_embd.weight": np.asarray(params["embedder"]["input_embedding"]),
        "output_norm.weight": np.asarray(params["final_norm"]["scale"]) + 1.0,
    }
    for i in range(cfg.num_layers):
        layer = params["layers"][i]
        attn = layer["attn"]
        p = f"blk.{i}."
        q = np.asarray(attn["q_einsum"]["w"])
        kv = np.asarray(attn["kv_einsum"]["w"])
        out[p + "attn_q.weight"] = q.transpose(0, 2, 1).reshape(n * h, d)
        out[p + "attn_k.weight"] = kv[0].transpose(0, 2, 1).reshape(k * h, d)
        out[p + "attn_v.weight"] = kv[1].transpose(0, 2, 1).reshape(k * h, d)
        vec = np.asarray(attn["attn_vec_einsum"]["w"])
        out[p + "attn_output.weight"] = vec.transpose(2, 0, 1).reshape(d, n * h)
        for gguf_name, proj in (
            ("ffn_gate", "gate_proj"),
            ("ffn_up", "up_proj"),
            ("ffn_down", "down_proj"),
        ):
            out[f"{p}{gguf_name}.weight"] = np.asarray(layer["mlp"][proj]["kernel"]).T
        norms = {
            "attn_norm": layer["pre_attention_norm"],
            "post_attention_norm": layer[cfg.post_attention_norm_name],
            "ffn_norm": layer["pre_ffw_norm"],
            "post_ffw_norm": layer["post_ffw_norm"],
        }
        if cfg.use_qk_norm:
            norms |= {"attn_q_norm": attn["_query_norm"], "attn_k_norm": attn["_key_norm"]}
        for name, norm in norms.items():
            out[f"{p}{name}.weight"] = np.asarray(norm["scale"]) + 1.0
    return {name: np.ascontiguousarray(value, dtype=np.float32) for name, value in out.items()}


def write_gguf(
    path: Path, model, tokenizer, tensors: dict[str, np.ndarray] | None = None, raw=None
):
    """A GGUF file like llama.cpp writes for Gemma: metadata, vocabulary and tensors.

    `raw` maps tensor names to (uint8 bytes array, GGMLQuantizationType) written as is.
    """
    import gguf
    from sentencepiece import sentencepiece_model_pb2 as sp_model

    cfg = model.config
    writer = gguf.GGUFWriter(str(path), arch=cfg.family)
    writer.add_block_count(cfg.num_layers)
    writer.add_embedding_length(cfg.embed_dim)
    writer.add_feed_forward_length(cfg.hidden_dim)
    writer.add_head_count(cfg.num_heads)
    writer.add_head_count_kv(cfg.num_kv_heads)
    proto = sp_model.ModelProto.FromString(tokenizer.model_proto)
    control = sp_model.ModelProto.SentencePiece.Type.CONTROL
    pieces = [p.piece for p in proto.pieces]
    # llama.cpp marks the turn markers as control tokens.
    types = [
        control if p.piece in ("<start_of_turn>", "<end_of_turn>") else p.type for p in proto.pieces
    ]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores([p.score for p in proto.pieces])
    writer.add_token_types(types)
    writer.add_bos_token_id(tokenizer.bos_id)
    writer.add_eos_token_id(tokenizer.eos_id)
    writer.add_unk_token_id(3)
    writer.add_pad_token_id(tokenizer.pad_id)
    writer.add_add_space_prefix(False)
    for name, value in (tensors if tensors is not None else gguf_tensors(model)).items():
        if raw and name in raw:
            data, qtype = raw[name]
            writer.add_tensor(name, data, raw_dtype=qtype)
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def gguf_writer():
    """`write_gguf(path, model, tokenizer, tensors=None, raw=None)`; `.tensors(model)` too."""
    write_gguf.tensors = gguf_tensors
    return write_gguf
