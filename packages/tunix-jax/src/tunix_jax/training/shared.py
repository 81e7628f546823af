"""What the jax-backend trainers (SFT and GRPO) share around their training loops: the
checks before anything is compiled, the base model they start from, and the export of
the trained model with its LoRA adapters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from flax import nnx

from tunix_core.config import RunConfig
from tunix_core.data.record import ReasoningExample
from tunix_core.errors import ConfigError, DataError, TunixError
from tunix_core.protocols import ModelBackend, ModelSpec, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_jax import sharding as mesh_lib
from tunix_jax.backend import JaxModel
from tunix_jax.devices import device_line
from tunix_jax.models.gemma.config import get_config
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.options import JaxTrainerOptions, model_options
from tunix_jax.training.checkpoint import Checkpointer
from tunix_jax.training.lora import LoraAdapters, projection_names
from tunix_jax.training.plots import plot_loss_curve
from tunix_jax.weights.orbax_io import read_tree


def trained_adapters(config: RunConfig, options: JaxTrainerOptions,
                      run: RunDirectory) -> LoraAdapters | None:  # fmt: skip
    """The trained LoRA adapters on their own, or None without LoRA (or without a step).

    The model ``run_training`` returns has them merged; the run's last checkpoint, which
    it always writes at the end, holds them as the trainable params.
    """
    lora = config.training.lora
    if not lora.enabled:
        return None
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
    return LoraAdapters(params, rank=lora.rank, alpha=lora.alpha, targets=options.lora_targets)


def load_base(
    config: RunConfig,
    train_examples: Sequence[ReasoningExample],
    backend: ModelBackend,
    progress: Callable[[str], None],
) -> JaxModel:
    """The model a jax-backend trainer starts from, once it knows there is data to train
    on; says which devices it trains on."""
    if not train_examples:
        raise DataError(f"dataset {config.dataset.name!r}: the train split has no examples")
    layout = model_options(config.model.options)
    progress(device_line(layout.mesh_data, layout.mesh_fsdp))
    base = backend.load(ModelSpec.from_config(config), progress=progress)
    if not isinstance(base, JaxModel):
        raise TunixError(f"the {config.trainer.name} trainer needs the jax backend's models, "
                         f"got {type(base)}")  # fmt: skip
    return base


def export_trained(
    config: RunConfig,
    options: JaxTrainerOptions,
    run: RunDirectory,
    backend: ModelBackend,
    base: JaxModel,
    trained: Any,
    result: TrainResult,
    *,
    title: str,
    progress: Callable[[str], None],
) -> TrainResult:
    """Plot the run's curves, export the ``trained`` transformer (LoRA merged) and its
    adapters through the backend, and say where; ``result`` with the export."""
    plot_loss_curve(run.metrics_path, run.loss_curve_path, title=title)
    model = JaxModel(base.spec, trained, base.tokenizer, base.mesh)
    export = backend.export(model, run.model_dir, adapters=trained_adapters(config, options, run))
    progress(f"[train] model written to {export.directory} ({export.fingerprint})")
    return TrainResult(result.steps, result.stopped_early, result.reason, export)


def check_jax_training(config: RunConfig, options: JaxTrainerOptions, *, rows: int) -> None:
    """The checks the jax-backend trainers share, before anything is compiled: the
    backend, the sequence length, the LoRA targets, and that ``rows`` (a micro-batch's
    rows) split evenly over the device mesh."""
    if config.model.backend != "jax":
        raise ConfigError(
            f"model.backend: the {config.trainer.name} trainer trains models of the jax "
            f"backend, not {config.model.backend!r}"
        )
    training = config.training
    model_config = get_config(config.model.preset)  # the backend checked the preset
    if training.max_seq_len > model_config.max_seq_len:
        raise ConfigError(
            f"training.max_seq_len: {training.max_seq_len} exceeds the maximum of "
            f"{config.model.preset} ({model_config.max_seq_len})"
        )
    if training.lora.enabled:
        shell = nnx.eval_shape(lambda: Transformer(model_config, rngs=nnx.Rngs(0)))
        available = projection_names(shell)
        unknown = sorted(set(options.lora_targets) - available)
        if unknown:
            raise ConfigError(
                f"trainer.options.lora_targets: {', '.join(map(repr, unknown))} not in "
                f"{config.model.preset}; available: {', '.join(sorted(available))}"
            )
    mesh_lib.initialize_distributed()
    layout = model_options(config.model.options)
    data, fsdp = mesh_lib.mesh_shape(jax.device_count(), layout.mesh_data, layout.mesh_fsdp)
    if rows % (data * fsdp):
        raise ConfigError(
            f"training.batch_size: {rows} rows cannot be split evenly over "
            f"{data * fsdp} devices (mesh data={data} x fsdp={fsdp})"
        )
