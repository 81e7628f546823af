"""The model export a competition submission ships, and the check that it loads back.

A model directory holds::

    params/            Orbax checkpoint of the merged parameters in the upstream layout of
                       Google's Flax Gemma checkpoints (`transformer/layer_0/attn/q_einsum`,
                       ...), which google-tunix's own loaders read unchanged
    adapters/          with LoRA only: the trained adapters on their own (see
                       `tunix_jax.training.lora.LoraAdapters`)
    tokenizer.model    the SentencePiece model
    model_config.json  preset, family, dims, dtype, source weights, parameter count,
                       fingerprint, and the code that loads params/ with google-tunix
    probe.json         the token ids of a fixed prompt and the logits at its last position

model_config.json records the sha256 and size of every other file (``file_digests``), so
that validation can tell a changed weight file without loading the model.

A Hugging Face folder (safetensors) or a GGUF file of the same weights is written only on
request, by ``tunix export RUN --format hf|gguf`` (docs/export.md): the competition loads
``params/``, and a second copy of the weights in every run costs its size in disk.

The fingerprint (sha256 over parameter names, shapes, dtypes and per-tensor sums, in the
module layout of the preset) ties the run manifest to the weights actually written. The
probe is computed with the parameters in the dtype they are stored in, which is how
either loader computes with them, so anyone who loads the export, with this project's
model or with google-tunix's Gemma modules, can check they compute the same function.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_core.evidence import file_digests
from tunix_core.layout import MODEL_CONFIG, model_id
from tunix_jax.export.google_tunix import google_tunix_recipe
from tunix_jax.models.gemma.config import ModelConfig, get_config
from tunix_jax.models.gemma.tokenizer import TOKENIZER_FILENAME, Tokenizer
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.weights.loading import model_params, save_orbax

if TYPE_CHECKING:
    from tunix_jax.training.lora import LoraAdapters

EXPORT_FORMAT = "tunix-model-export"
EXPORT_VERSION = 3
PROBE_FILENAME = "probe.json"
PARAMS_DIRNAME = "params"
ADAPTERS_DIRNAME = "adapters"
FILE_DIGESTS = "file_digests"  # the model_config.json field: path -> {sha256, bytes}
PARAMS_LAYOUT = "upstream"

PROBE_PROMPT = (
    "<start_of_turn>user\nWhat is 17 + 25? Show your reasoning.<end_of_turn>\n"
    "<start_of_turn>model\n"
)
# Up to this vocabulary size probe.json stores every logit; above it the top k and a summary.
FULL_LOGITS_MAX_VOCAB = 4096
PROBE_TOP_K = 64


@dataclasses.dataclass(frozen=True)
class ModelExport:
    """What :func:`write_model_dir` wrote; a trainer records ``model_id`` and ``fingerprint``
    in the run manifest."""

    directory: Path
    model_id: str
    fingerprint: str
    num_params: int


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


def _computing_in(model: Transformer, dtype: Any) -> Transformer:
    """``model``'s parameters in a module graph that computes in ``dtype``, its weight
    matmuls too (a loader knows nothing of ``model.options.matmul_dtype``)."""
    if jnp.dtype(model.dtype) == jnp.dtype(dtype) and model.matmul_dtype is None:
        return model
    shell = nnx.eval_shape(
        lambda: Transformer(model.config, rngs=nnx.Rngs(0), dtype=dtype, param_dtype=dtype)
    )
    graphdef, _ = nnx.split(shell)
    return nnx.merge(graphdef, nnx.state(model))


def write_model_dir(
    model: Transformer,
    tokenizer: Tokenizer,
    *,
    preset: str,
    weights: str,
    directory: str | os.PathLike[str],
    adapters: LoraAdapters | None = None,
) -> ModelExport:
    """Write ``model`` (merged weights) and ``tokenizer`` to ``directory``, and the LoRA
    ``adapters`` it was trained with, if any, to ``adapters/``.

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
    dtype = _dtype_name(model)
    token_ids = tokenizer.encode(PROBE_PROMPT, add_bos=True)
    # A model trained with another compute dtype (float32 weights, bfloat16 compute or
    # bfloat16 matmuls) is probed as it is loaded back: computing in the dtype of its
    # stored weights.
    logits = probe_logits(_computing_in(model, jnp.dtype(dtype)), token_ids)

    staging = directory.with_name(f".{directory.name}.export-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_orbax(model, staging / PARAMS_DIRNAME)
    if adapters is not None:
        adapters.save(staging / ADAPTERS_DIRNAME)
    tokenizer.save(staging)
    run_model_id = model_id(preset, weights)
    files = {"params": PARAMS_DIRNAME, "tokenizer": TOKENIZER_FILENAME}
    if adapters is not None:
        files["adapters"] = ADAPTERS_DIRNAME
    meta = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "backend": "jax",
        "model_id": run_model_id,
        "preset": preset,
        "family": config.family,
        "weights": weights,
        "dtype": dtype,
        "num_params": num_params,
        "fingerprint": fingerprint,
        "config": config.to_dict(),
        "params_layout": PARAMS_LAYOUT,
        "google_tunix": google_tunix_recipe(config, dtype),
        "files": files,
    }
    probe = {
        "prompt": PROBE_PROMPT,
        "add_bos": True,
        "token_ids": token_ids,
        "compute_dtype": dtype,
        **_probe_record(logits),
    }
    _write_json(staging / PROBE_FILENAME, probe)
    meta[FILE_DIGESTS] = file_digests(staging)
    _write_json(staging / MODEL_CONFIG, meta)

    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
    return ModelExport(directory, run_model_id, fingerprint, num_params)


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_export_meta(directory: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(model_config.json, probe.json)`` of an export."""
    directory = Path(directory)
    meta = json.loads((directory / MODEL_CONFIG).read_text(encoding="utf-8"))
    probe = json.loads((directory / PROBE_FILENAME).read_text(encoding="utf-8"))
    return meta, probe


