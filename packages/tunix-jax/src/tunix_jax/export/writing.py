"""The model export a competition submission ships, and the check that it loads back.

A model directory holds::

    params/            Orbax checkpoint of the merged parameters in the upstream layout of
                       Google's Flax Gemma checkpoints (`transformer/layer_0/attn/q_einsum`,
                       ...), which google-tunix's own loaders read unchanged
    adapters/          with LoRA only: the trained adapters on their own (see
                       `tunix_jax.train.lora.LoraAdapters`)
    tokenizer.model    the SentencePiece model
    model_config.json  preset, family, dims, dtype, source weights, parameter count,
                       fingerprint, and the code that loads params/ with google-tunix
    probe.json         the token ids of a fixed prompt and the logits at its last position

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

from tunix_core.layout import MODEL_CONFIG, model_id
from tunix_jax.model.config import ModelConfig, base_preset, get_config
from tunix_jax.model.loading import load_model, model_params, save_orbax
from tunix_jax.model.tokenizer import TOKENIZER_FILENAME, Tokenizer
from tunix_jax.model.transformer import Transformer

if TYPE_CHECKING:
    from tunix_jax.train.lora import LoraAdapters

EXPORT_FORMAT = "tunix-model-export"
EXPORT_VERSION = 2
PROBE_FILENAME = "probe.json"
PARAMS_DIRNAME = "params"
ADAPTERS_DIRNAME = "adapters"
PARAMS_LAYOUT = "upstream"

PROBE_PROMPT = (
    "<start_of_turn>user\nWhat is 17 + 25? Show your reasoning.<end_of_turn>\n"
    "<start_of_turn>model\n"
)
# Up to this vocabulary size probe.json stores every logit; above it the top k and a summary.
FULL_LOGITS_MAX_VOCAB = 4096
PROBE_TOP_K = 64
# Logit tolerance relative to the largest probe logit, by the dtype the model computes in.
RELATIVE_TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 3e-3}
# google-tunix's stock config of each preset that has one: the Gemma 3 `ModelConfig`
# factory, or the Gemma 2 `Gemma.from_params` version (same architecture for -it and -pt).
GOOGLE_TUNIX_STOCK = {
    "gemma3-270m": "gemma3_270m",
    "gemma3-1b": "gemma3_1b_it",
    "gemma2-2b": "2-2b",
}


class GoogleTunixUnsupportedError(ValueError):
    """An architecture google-tunix's Gemma modules cannot express."""


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
    _write_json(staging / MODEL_CONFIG, meta)
    _write_json(staging / PROBE_FILENAME, probe)

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


def compare_probe(
    probe: Mapping[str, Any], logits: np.ndarray, *, dtype: str
) -> tuple[float, float, bool, int, int]:
    """``(max_abs_diff, tolerance, argmax_match, compared, actual_argmax)`` of ``logits``
    against the recorded probe (all logits, or the recorded top k). ``argmax_match``
    also holds when the top token changed between two whose recorded logits are within
    ``tolerance`` of each other: a tie that the loader's precision may break either way."""
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
    recorded = dict(zip(indices.tolist(), expected.tolist(), strict=True))
    tied = actual_argmax in recorded and float(np.max(expected)) - recorded[actual_argmax] <= tolerance
    match = actual_argmax == probe["argmax"] or tied
    return diff, tolerance, match, int(indices.size), actual_argmax


def export_problems(directory: Path) -> list[str]:
    """The export must be complete, its config must match its preset and its checkpoint
    must hold the preset's parameters, with their shapes, in the upstream layout. Reads
    metadata only."""
    from tunix_core.errors import ConfigError
    from tunix_jax.model.orbax_io import checkpoint_shapes
    from tunix_jax.model.params import detect_layout, layout_problems

    required = (MODEL_CONFIG, PROBE_FILENAME, TOKENIZER_FILENAME, PARAMS_DIRNAME)
    problems = [
        f"{directory / name}: missing from the model export"
        for name in required
        if not (directory / name).exists()
    ]
    if problems:
        return problems
    config_path = directory / MODEL_CONFIG
    try:
        meta = json.loads(config_path.read_text(encoding="utf-8"))
        preset_config = get_config(str(meta["preset"]))
        recorded = ModelConfig.from_dict(meta["config"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        return [f"{config_path}: not a valid model export config ({exc})"]
    for key, value in preset_config.to_dict().items():
        if key != "name" and recorded.to_dict().get(key) != value:
            problems.append(
                f"{config_path}: config.{key} is {recorded.to_dict().get(key)!r} but preset "
                f"{meta['preset']!r} has {value!r}"
            )
    params_dir = directory / PARAMS_DIRNAME
    try:
        stored = checkpoint_shapes(params_dir)
    except Exception as exc:  # orbax raises many types for a damaged checkpoint
        return [*problems, f"{params_dir}: unreadable Orbax checkpoint ({exc})"]
    try:
        layout = detect_layout(stored, str(params_dir))
    except ConfigError as exc:
        return [*problems, str(exc)]
    if layout != PARAMS_LAYOUT:
        problems.append(
            f"{params_dir}: parameters in the module layout (an older export); google-tunix's "
            "loaders need the upstream layout"
        )
    else:
        problems += [
            f"{params_dir}: {message}"
            for _, message in layout_problems(stored, preset_config, PARAMS_LAYOUT)
        ]
    if meta.get("num_params") != preset_config.num_params():
        problems.append(
            f"{config_path}: num_params is {meta.get('num_params')!r} but preset "
            f"{meta['preset']!r} has {preset_config.num_params()}"
        )
    return problems


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


def _query_scaling(config: ModelConfig) -> str:
    if config.query_pre_attn_scalar == config.head_dim:
        return "BY_ONE_OVER_SQRT_HEAD_DIM"
    if config.query_pre_attn_scalar == config.embed_dim // config.num_heads:
        return "BY_ONE_OVER_SQRT_EMBED_DIM_DIV_NUM_HEADS"
    raise GoogleTunixUnsupportedError(
        f"google-tunix cannot scale queries by {config.query_pre_attn_scalar}**-0.5"
    )


def google_tunix_config(config: ModelConfig) -> Any:
    """google-tunix's ``ModelConfig`` (Gemma 3 or Gemma 2) of ``config``; raises
    GoogleTunixUnsupportedError for numerics its modules fix differently (the Gemma 3
    attention pattern, Gemma 2's query scaling and RoPE, the norm epsilon)."""
    if config.rms_norm_eps != 1e-6:
        raise GoogleTunixUnsupportedError("google-tunix's RMSNorm has epsilon 1e-6")
    query_scaling = _query_scaling(config)
    if config.family == "gemma3":
        from tunix.models.gemma3 import model as gemma3_lib

        pattern = tuple(
            "local" if kind == gemma3_lib.AttentionType.LOCAL_SLIDING else "global"
            for kind in gemma3_lib.GEMMA3_ATTENTION_PATTERN
        )
        if config.attention_pattern != pattern:
            raise GoogleTunixUnsupportedError(
                f"google-tunix's Gemma 3 has the attention pattern {pattern}"
            )
        if config.attn_logit_softcap is not None or config.final_logit_softcap is not None:
            raise GoogleTunixUnsupportedError("google-tunix's Gemma 3 has no logit soft-caps")
        return gemma3_lib.ModelConfig(
            num_layers=config.num_layers,
            num_embed=config.checkpoint_vocab_size,
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
            query_pre_attn_norm=gemma3_lib.QueryPreAttentionNormalisation[query_scaling],
        )
    from tunix.models.gemma import model as gemma_lib

    if query_scaling != "BY_ONE_OVER_SQRT_HEAD_DIM":
        raise GoogleTunixUnsupportedError("google-tunix's Gemma scales queries by head_dim**-0.5")
    ropes = (config.local_rope_base, config.global_rope_base, config.local_rope_scale,
             config.global_rope_scale)  # fmt: skip
    if ropes != (10_000.0, 10_000.0, 1.0, 1.0) or config.use_qk_norm:
        raise GoogleTunixUnsupportedError(
            "google-tunix's Gemma has RoPE base 10,000 unscaled and no query/key norms"
        )
    types = {
        "local": gemma_lib.AttentionType.LOCAL_SLIDING,
        "global": gemma_lib.AttentionType.GLOBAL,
    }
    return gemma_lib.ModelConfig(
        num_layers=config.num_layers,
        num_embed=config.checkpoint_vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        num_kv_heads=config.num_kv_heads,
        final_logit_softcap=config.final_logit_softcap,
        use_post_attn_norm=True,
        use_post_ffw_norm=True,
        attention_types=tuple(types[config.attention_kind(i)] for i in range(config.num_layers)),
        attn_logits_soft_cap=config.attn_logit_softcap,
        sliding_window_size=config.sliding_window,
    )


def load_with_google_tunix(
    checkpoint: str | os.PathLike[str], config: ModelConfig, dtype: Any
) -> tuple[Any, str]:
    """``(module, how)``: an upstream-layout checkpoint loaded by google-tunix's own code.

    Gemma 3: ``gemma3.params.create_model_from_checkpoint`` with the preset's stock
    ``ModelConfig`` (or :func:`google_tunix_config` for presets without one), parameters
    cast to ``dtype``. Gemma 2: ``Gemma.from_params(load_and_format_params(path), version)``
    for a stock preset; otherwise the function from_params calls,
    ``module_from_linen_variables``, with from_params' own key and value mappings and
    :func:`google_tunix_config`. Gemma 2 keeps the stored dtype.
    """
    path = os.path.abspath(checkpoint)  # Orbax refuses relative paths
    stock = GOOGLE_TUNIX_STOCK.get(base_preset(config.name))
    if config.family == "gemma3":
        from tunix.models.gemma3 import model as gemma3_lib
        from tunix.models.gemma3 import params as gemma3_params

        if stock:
            tunix_config, how = getattr(gemma3_lib.ModelConfig, stock)(), f"ModelConfig.{stock}()"
        else:
            tunix_config, how = google_tunix_config(config), "its ModelConfig of this preset"
        module = gemma3_params.create_model_from_checkpoint(path, tunix_config, dtype=dtype)
        return module, f"google-tunix gemma3.params.create_model_from_checkpoint, {how}"

    from tunix.models.gemma import model as gemma_lib
    from tunix.models.gemma import params as gemma_params

    variables = gemma_params.load_and_format_params(path)
    if stock:
        module = gemma_lib.Gemma.from_params(variables, version=stock)
        return module, f"google-tunix Gemma.from_params(load_and_format_params), version {stock!r}"
    tunix_config = google_tunix_config(config)
    module = gemma_lib.module_from_linen_variables(
        module_factory=lambda: gemma_lib.Gemma(tunix_config, rngs=nnx.Rngs(params=0)),
        variables=variables["transformer"],
        map_key_fn=gemma_lib._map_linen_var_names,
        assign_val_fn=gemma_lib._assign_linen_params_to_nnx_state,
    )
    return module, (
        "google-tunix module_from_linen_variables(load_and_format_params), "
        "its ModelConfig of this preset"
    )


def google_tunix_recipe(config: ModelConfig, dtype: str) -> dict[str, Any]:
    """The lines of Python that load ``model/params`` with google-tunix, as
    :func:`load_with_google_tunix` does (the README shows them)."""
    path = 'os.path.abspath("model/params")'
    stock = GOOGLE_TUNIX_STOCK.get(base_preset(config.name))
    if stock and config.family == "gemma3":
        code = [
            "import os, jax.numpy as jnp",
            "from tunix.models.gemma3 import model, params",
            f"gemma = params.create_model_from_checkpoint({path}, "
            f"model.ModelConfig.{stock}(), dtype=jnp.{dtype})",
        ]
    elif stock:
        code = [
            "import os",
            "from tunix.models.gemma import model, params",
            f"gemma = model.Gemma.from_params(params.load_and_format_params({path}), "
            f"version={stock!r})",
        ]
    else:  # a test preset: google-tunix has no config of its own for it
        code = [
            "import os, jax.numpy as jnp",
            "from tunix_jax.export import load_with_google_tunix; "
            "from tunix_jax.model.config import get_config",
            f"gemma, _ = load_with_google_tunix({path}, get_config({config.name!r}), jnp.{dtype})",
        ]
    return {"stock_config": stock, "code": code}


def _without_padding(params: dict[str, Any], config: ModelConfig) -> dict[str, Any]:
    """A google-tunix module's parameters with the embedding cut to the preset's vocabulary."""
    table = params["embedder"]["input_embedding"]
    return {**params, "embedder": {"input_embedding": table[: config.vocab_size]}}


def verify_with_google_tunix(directory: str | os.PathLike[str]) -> RoundTripReport:
    """Load the export's ``params/`` with google-tunix's own loader
    (:func:`load_with_google_tunix`) and compare its probe logits, tokenization and
    fingerprint with what was recorded (needs ``google-tunix``)."""
    import jax

    directory = Path(directory)
    meta, probe = read_export_meta(directory)
    config = get_config(meta["preset"])
    module, how = load_with_google_tunix(
        directory / PARAMS_DIRNAME, config, jnp.dtype(meta["dtype"])
    )
    ids = list(probe["token_ids"])
    tokens = jnp.asarray([ids], dtype=jnp.int32)
    positions = jnp.arange(len(ids), dtype=jnp.int32)[None, :]
    causal = jnp.tril(jnp.ones((len(ids), len(ids)), dtype=jnp.bool_))[None]
    logits, _ = module(tokens, positions, None, causal)
    # Padding rows of the embedding (Gemma 2) are no tokens: compare the preset's vocabulary.
    last = np.asarray(jax.device_get(logits[0, -1, : config.vocab_size]), dtype=np.float32)
    diff, tolerance, argmax_match, compared, actual = compare_probe(
        probe, last, dtype=meta["dtype"]
    )
    tokenizer = Tokenizer.load(directory / TOKENIZER_FILENAME)
    loaded = _without_padding(nnx.to_pure_dict(nnx.state(module, nnx.Param)), config)
    return RoundTripReport(
        loader=how,
        max_abs_diff=diff,
        tolerance=tolerance,
        argmax_match=argmax_match,
        tokens_match=tokenizer.encode(probe["prompt"], add_bos=probe["add_bos"]) == ids,
        fingerprint_match=param_fingerprint(loaded) == meta["fingerprint"],
        logits_compared=compared,
        expected_argmax=int(probe["argmax"]),
        actual_argmax=actual,
    )
