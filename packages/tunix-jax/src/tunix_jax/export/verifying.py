"""The check that a model export loads back: with this project's loader, or with
google-tunix's own (:mod:`tunix_jax.export.google_tunix`), the probe logits, the
tokenization and the fingerprint must match what :mod:`tunix_jax.export.writing` recorded;
and the metadata-only check of an export's files, config and checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_core.errors import ConfigError
from tunix_core.evidence import digest_problems
from tunix_core.layout import MODEL_CONFIG, PHASE_RECORD
from tunix_jax.export.google_tunix import load_with_google_tunix
from tunix_jax.export.writing import (
    FILE_DIGESTS,
    PARAMS_DIRNAME,
    PARAMS_LAYOUT,
    PROBE_FILENAME,
    param_fingerprint,
    probe_logits,
    read_export_meta,
)
from tunix_jax.models.gemma.config import ModelConfig, get_config
from tunix_jax.models.gemma.params import detect_layout, layout_problems
from tunix_jax.models.gemma.tokenizer import TOKENIZER_FILENAME, Tokenizer
from tunix_jax.weights.loading import load_model, model_params
from tunix_jax.weights.orbax_io import checkpoint_shapes

# Logit tolerance relative to the largest probe logit, by the dtype the model computes in.
RELATIVE_TOLERANCE = {"float32": 1e-4, "bfloat16": 3e-2, "float16": 3e-3}


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
    """The export must be complete, every file must have the size and sha256 that
    model_config.json recorded when it was written, its config must match its preset and
    its checkpoint must hold the preset's parameters, with their shapes, in the upstream
    layout. Loads no weights."""
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
    # The runner writes phase.json into a finished phase's export after it was recorded.
    problems += digest_problems(directory, meta.get(FILE_DIGESTS), f"{config_path} {FILE_DIGESTS}",
                                skip={MODEL_CONFIG, PHASE_RECORD})  # fmt: skip
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


def _without_padding(params: dict[str, Any], config: ModelConfig) -> dict[str, Any]:
    """A google-tunix module's parameters with the embedding cut to the preset's vocabulary."""
    table = params["embedder"]["input_embedding"]
    return {**params, "embedder": {"input_embedding": table[: config.vocab_size]}}


def verify_with_google_tunix(directory: str | os.PathLike[str]) -> RoundTripReport:
    """Load the export's ``params/`` with google-tunix's own loader
    (:func:`load_with_google_tunix`) and compare its probe logits, tokenization and
    fingerprint with what was recorded (needs ``google-tunix``)."""
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
