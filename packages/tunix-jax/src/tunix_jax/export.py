"""The model export a competition submission ships, and the check that it loads back.

A model directory holds::

    params/            Orbax checkpoint of the parameters in the google-tunix Gemma layout
    tokenizer.model    the SentencePiece model
    model_config.json  preset, family, dims, dtype, source weights, parameter count, fingerprint
    probe.json         the token ids of a fixed prompt and the logits at its last position

The fingerprint (sha256 over parameter names, shapes, dtypes and per-tensor sums) ties the
run manifest to the weights actually written; the probe lets anyone who loads the export,
with this project's model or with Google Tunix's Gemma modules, check they compute the
same function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from tunix_jax.model.config import ModelConfig, get_config
from tunix_jax.model.loading import load_model, model_params, save_orbax
from tunix_jax.model.tokenizer import TOKENIZER_FILENAME, Tokenizer
from tunix_jax.model.transformer import Transformer

EXPORT_FORMAT = "tunix-model-export"
EXPORT_VERSION = 1
MODEL_CONFIG_FILENAME = "model_config.json"
PROBE_FILENAME = "probe.json"
PARAMS_DIRNAME = "params"

PROBE_PROMPT = (
    "<start_of_turn>user\nWhat is 17 + 25? Show your reasoning.<end_of_turn>\n"
    "<start_of_turn>model\n"
)
# Up to this vocabulary size probe.json stores every logit; above it the top k and a summary.
FULL_LOGITS_MAX_VOCAB = 4096
PROBE_TOP_K = 64
# Logit tolerance relative to the largest probe logit, by the dtype the model computes in.
RELATIVE_TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 3e-3}


@dataclasses.dataclass(frozen=True)
class ModelExport:
    """What :func:`write_model_dir` wrote; a trainer records ``model_id`` and ``fingerprint``
    in the run manifest."""

    directory: Path
    model_id: str
    fingerprint: str
    num_params: int


@dataclasses.dataclass(frozen=True)
class RoundTripReport:
    """How the reloaded export compares with the probe recorded when it was written."""

    loader: str
    max_abs_diff: float
    tolerance: float
    argmax_match: bool
    tokens_match: bool
    fingerprint_match: bool
    logits_compared: int
    expected_argmax: int
    actual_argmax: int

    @property
    def ok(self) -> bool:
        return (
            self.argmax_match
            and self.tokens_match
            and self.fingerprint_match
            and self.max_abs_diff <= self.tolerance
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


def _flatten(tree: Mapping[Any, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = (*prefix, str(key))
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        else:
            flat["/".join(path)] = value
    return flat


def param_fingerprint(params: Mapping[Any, Any]) -> str:
    """sha256 over every parameter's path, shape, dtype, sum and sum of squares.

    The sums are taken in float64 on the host and written with 8 significant digits, so
    the same weights give the same fingerprint on any machine, and retrained or swapped
    weights do not.
    """
    digest = hashlib.sha256()
    for path, value in sorted(_flatten(params).items()):
        array = np.asarray(value)
        total, squares = _sums(array)
        line = f"{path}|{list(array.shape)}|{array.dtype.name}|{total:.8e}|{squares:.8e}\n"
        digest.update(line.encode())
    return "sha256:" + digest.hexdigest()


def _sums(array: np.ndarray, chunk: int = 1 << 20) -> tuple[float, float]:
    """Sum and sum of squares in float64, a fixed-size chunk at a time (a 1B-parameter
    embedding would otherwise need gigabytes of float64 copies)."""
    flat = array.reshape(-1)
    total = squares = 0.0
    for start in range(0, flat.size, chunk):
        block = flat[start : start + chunk].astype(np.float64)
        total += float(block.sum())
        squares += float(np.square(block).sum())
    return total, squares


def count_params(params: Mapping[Any, Any]) -> int:
    return int(sum(np.asarray(v).size for v in _flatten(params).values()))


def probe_logits(model: Transformer, token_ids: Sequence[int]) -> np.ndarray:
    """The float32 logits at the last position of ``token_ids`` (one causal forward pass)."""
    tokens = jnp.asarray([list(token_ids)], dtype=jnp.int32)
    positions = jnp.arange(len(token_ids), dtype=jnp.int32)[None, :]
    logits, _ = model(tokens, positions)
    return np.asarray(logits[0, -1], dtype=np.float32)


def _probe_record(logits: np.ndarray) -> dict[str, Any]:
    record: dict[str, Any] = {
        "vocab_size": int(logits.shape[0]),
        "argmax": int(np.argmax(logits)),
        "sum": float(logits.astype(np.float64).sum()),
        "l2_norm": float(np.linalg.norm(logits.astype(np.float64))),
        "sha256_f32": hashlib.sha256(logits.astype("<f4").tobytes()).hexdigest(),
    }
    if logits.shape[0] <= FULL_LOGITS_MAX_VOCAB:
        record["logits"] = [float(x) for x in logits]
    else:
        top = np.argsort(-logits, kind="stable")[:PROBE_TOP_K]
        record["top_k"] = {
            "indices": [int(i) for i in top],
            "values": [float(logits[i]) for i in top],
        }
    return record


def _dtype_name(model: Transformer) -> str:
    leaves = list(_flatten(model_params(model)).values())
    return np.asarray(leaves[0]).dtype.name if leaves else "float32"


def write_model_dir(
    model: Transformer,
    tokenizer: Tokenizer,
    *,
    preset: str,
    weights: str,
    directory: str | os.PathLike[str],
) -> ModelExport:
    """Write ``model`` (merged weights, no adapters) and ``tokenizer`` to ``directory``.

    ``preset`` and ``weights`` are what the run was configured with; ``preset@weights`` is
    the run manifest's ``model_id``. An existing directory is replaced only once the new
    export is complete.
    """
    directory = Path(directory)
    config: ModelConfig = get_config(preset)
    if config.to_dict() | {"name": model.config.name} != model.config.to_dict():
        raise ValueError(
            f"the model's architecture ({model.config.name}) does not match preset {preset!r}"
        )
    params = model_params(model)
    fingerprint = param_fingerprint(params)
    num_params = count_params(params)
    token_ids = tokenizer.encode(PROBE_PROMPT, add_bos=True)
    logits = probe_logits(model, token_ids)

    staging = directory.with_name(f".{directory.name}.export-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_orbax(model, staging / PARAMS_DIRNAME)
    tokenizer.save(staging)
    model_id = f"{preset}@{weights}"
    meta = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "model_id": model_id,
        "preset": preset,
        "family": config.family,
        "weights": weights,
        "dtype": _dtype_name(model),
        "num_params": num_params,
        "fingerprint": fingerprint,
        "config": config.to_dict(),
        "files": {"params": PARAMS_DIRNAME, "tokenizer": TOKENIZER_FILENAME},
    }
    probe = {
        "prompt": PROBE_PROMPT,
        "add_bos": True,
        "token_ids": token_ids,
        **_probe_record(logits),
    }
    _write_json(staging / MODEL_CONFIG_FILENAME, meta)
    _write_json(staging / PROBE_FILENAME, probe)

    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
    return ModelExport(directory, model_id, fingerprint, num_params)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_export_meta(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model_config.json, probe.json)`` of an export."""
    directory = Path(directory)
    meta = json.loads((directory / MODEL_CONFIG_FILENAME).read_text(encoding="utf-8"))
    probe = json.loads((directory / PROBE_FILENAME).read_text(encoding="utf-8"))
    return meta, probe


def compare_probe(
    probe: Mapping[str, Any], logits: np.ndarray, *, dtype: str
) -> tuple[float, float, bool, int, int]:
    """``(max_abs_diff, tolerance, argmax_match, compared, actual_argmax)`` of ``logits``
    against the recorded probe (all logits, or the recorded top k)."""
    if "logits" in probe:
        indices = np.arange(len(probe["logits"]))
        expected = np.asarray(probe["logits"], dtype=np.float32)
    else:
        indices = np.asarray(probe["top_k"]["indices"])
        expected = np.asarray(probe["top_k"]["values"], dtype=np.float32)
    if logits.shape[0] != probe["vocab_size"]:
        return float("inf"), 0.0, False, 0, int(np.argmax(logits))
    diff = float(np.max(np.abs(logits[indices] - expected)))
    scale = max(1.0, float(np.max(np.abs(expected))))
    tolerance = RELATIVE_TOLERANCE.get(dtype, RELATIVE_TOLERANCE["bfloat16"]) * scale
    actual_argmax = int(np.argmax(logits))
    return diff, tolerance, actual_argmax == probe["argmax"], int(indices.size), actual_argmax


def verify_model_dir(directory: str | os.PathLike[str]) -> RoundTripReport:
    """Load the export with ``load_model("orbax:...")`` into this project's Transformer and
    compare its probe logits, tokenization and fingerprint with what was recorded."""
    directory = Path(directory)
    meta, probe = read_export_meta(directory)
    dtype = meta["dtype"]
    model, tokenizer = load_model(
        meta["preset"], f"orbax:{directory / PARAMS_DIRNAME}", dtype=jnp.dtype(dtype)
    )
    tokens_match = tokenizer.encode(probe["prompt"], add_bos=probe["add_bos"]) == probe["token_ids"]
    logits = probe_logits(model, probe["token_ids"])
    diff, tolerance, argmax_match, compared, actual = compare_probe(probe, logits, dtype=dtype)
    return RoundTripReport(
        loader="tunix_jax.load_model(orbax)",
        max_abs_diff=diff,
        tolerance=tolerance,
        argmax_match=argmax_match,
        tokens_match=tokens_match,
        fingerprint_match=param_fingerprint(model_params(model)) == meta["fingerprint"],
        logits_compared=compared,
        expected_argmax=int(probe["argmax"]),
        actual_argmax=actual,
    )


def google_tunix_available() -> bool:
    """Whether Google's ``google-tunix`` distribution (import name ``tunix``) is installed."""
    import importlib.util

    return importlib.util.find_spec("tunix") is not None


def google_tunix_module(config: ModelConfig, dtype: Any) -> Any:
    """An abstract (shape-only) Gemma module of google-tunix for ``config``.

    google-tunix fixes the Gemma 3 attention pattern (5 local, 1 global) and scales queries
    by ``head_dim ** -0.5`` (or ``(embed_dim // num_heads) ** -0.5``); a config it cannot
    express raises ``ValueError``.
    """
    from flax import nnx

    kinds = tuple(config.attention_kind(i) for i in range(config.num_layers))
    if config.query_pre_attn_scalar == config.head_dim:
        query_norm = "BY_ONE_OVER_SQRT_HEAD_DIM"
    elif config.query_pre_attn_scalar == config.embed_dim // config.num_heads:
        query_norm = "BY_ONE_OVER_SQRT_EMBED_DIM_DIV_NUM_HEADS"
    else:
        raise ValueError(
            f"google-tunix cannot scale queries by {config.query_pre_attn_scalar}**-0.5"
        )
    if config.family == "gemma3":
        from tunix.models.gemma3 import model as gemma3_lib

        pattern = tuple(
            "local" if t == gemma3_lib.AttentionType.LOCAL_SLIDING else "global"
            for t in gemma3_lib.GEMMA3_ATTENTION_PATTERN
        )
        if config.attention_pattern != pattern:
            raise ValueError(f"google-tunix's Gemma 3 has the attention pattern {pattern}")
        gemma3_config = gemma3_lib.ModelConfig(
            num_layers=config.num_layers,
            num_embed=config.vocab_size,
            embed_dim=config.embed_dim,
            hidden_dim=config.hidden_dim,
            num_heads=config.num_heads,
            head_dim=config.head_dim,
            num_kv_heads=config.num_kv_heads,
            sliding_window_size=config.sliding_window,
            local_base_frequency=int(config.local_rope_base),
            global_base_frequency=int(config.global_rope_base),
            local_scale_factor=config.local_rope_scale,
            global_scale_factor=config.global_rope_scale,
            query_pre_attn_norm=gemma3_lib.QueryPreAttentionNormalisation[query_norm],
            param_dtype=dtype,
        )
        return nnx.eval_shape(lambda: gemma3_lib.Gemma3(gemma3_config, rngs=nnx.Rngs(0)))
    from tunix.models.gemma import model as gemma_lib

    if query_norm != "BY_ONE_OVER_SQRT_HEAD_DIM":
        raise ValueError("google-tunix's Gemma scales queries by head_dim ** -0.5 only")
    types = {
        "local": gemma_lib.AttentionType.LOCAL_SLIDING,
        "global": gemma_lib.AttentionType.GLOBAL,
    }
    gemma_config = gemma_lib.ModelConfig(
        num_layers=config.num_layers,
        num_embed=config.vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        num_kv_heads=config.num_kv_heads,
        final_logit_softcap=config.final_logit_softcap,
        use_post_attn_norm=True,
        use_post_ffw_norm=True,
        attention_types=tuple(types[kind] for kind in kinds),
        attn_logits_soft_cap=config.attn_logit_softcap,
        sliding_window_size=config.sliding_window,
    )
    return nnx.eval_shape(lambda: gemma_lib.Gemma(gemma_config, rngs=nnx.Rngs(0)))


def verify_with_google_tunix(directory: str | os.PathLike[str]) -> RoundTripReport:
    """Restore the export's Orbax params into google-tunix's Gemma3/Gemma module and
    compare its probe logits with what was recorded (needs ``google-tunix``)."""
    import jax
    from flax import nnx

    from tunix_jax.model.orbax_io import read_params

    directory = Path(directory)
    meta, probe = read_export_meta(directory)
    dtype = jnp.dtype(meta["dtype"])
    config = get_config(meta["preset"])
    module = google_tunix_module(config, dtype)
    tree: dict[Any, Any] = {}
    for path, tensor in read_params(directory / PARAMS_DIRNAME).items():
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = jnp.asarray(tensor.value, dtype=dtype)
    nnx.update(module, tree)

    ids = list(probe["token_ids"])
    tokens = jnp.asarray([ids], dtype=jnp.int32)
    positions = jnp.arange(len(ids), dtype=jnp.int32)[None, :]
    causal = jnp.tril(jnp.ones((len(ids), len(ids)), dtype=jnp.bool_))[None]
    logits, _ = module(tokens, positions, None, causal)
    last = np.asarray(jax.device_get(logits[0, -1]), dtype=np.float32)
    diff, tolerance, argmax_match, compared, actual = compare_probe(
        probe, last, dtype=meta["dtype"]
    )
    tokenizer = Tokenizer.load(directory / TOKENIZER_FILENAME)
    return RoundTripReport(
        loader=f"google-tunix {type(module).__name__}",
        max_abs_diff=diff,
        tolerance=tolerance,
        argmax_match=argmax_match,
        tokens_match=tokenizer.encode(probe["prompt"], add_bos=probe["add_bos"]) == ids,
        fingerprint_match=param_fingerprint(nnx.to_pure_dict(nnx.state(module, nnx.Param)))
        == meta["fingerprint"],
        logits_compared=compared,
        expected_argmax=int(probe["argmax"]),
        actual_argmax=actual,
    )
