"""The ``jax`` trainer: supervised fine-tuning of Gemma on rendered reasoning traces.

``validate`` checks the training configuration without compiling anything (the ``jax``
backend checks the model); ``train`` takes the base model from the backend, renders and
tokenizes the examples, trains (resuming from the run's checkpoints) and exports the
merged model, and the LoRA adapters on their own, through the backend to
``run.model_dir``. Configuration: ``training.*`` and ``trainer.options``
(:class:`tunix_jax.options.JaxTrainerOptions`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tunix_core.config import RunConfig
from tunix_core.context import RunContext
from tunix_core.data.render import render_example
from tunix_core.errors import ConfigError, DataError, TunixError
from tunix_core.protocols import ModelBackend, ModelSpec, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_jax.options import JaxTrainerOptions, trainer_options

if TYPE_CHECKING:
    from tunix_core.data.record import ReasoningExample
    from tunix_jax.backend import JaxModel
    from tunix_jax.train.data import TokenizedExample
    from tunix_jax.train.lora import LoraAdapters

log = logging.getLogger("tunix.train")


def trained_adapters(config: RunConfig, options: JaxTrainerOptions,
                      run: RunDirectory) -> LoraAdapters | None:  # fmt: skip
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
    return LoraAdapters(params, rank=lora.rank, alpha=lora.alpha, targets=options.lora_targets)


def load_base(
    config: RunConfig,
    train_examples: Sequence[ReasoningExample],
    backend: ModelBackend,
    progress: Callable[[str], None],
) -> JaxModel:
    """The model a jax-backend trainer starts from, once it knows there is data to train
    on; says which devices it trains on."""
    from tunix_jax.backend import JaxModel
    from tunix_jax.devices import device_line
    from tunix_jax.options import model_options

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
    from tunix_jax.backend import JaxModel
    from tunix_jax.train.plots import plot_loss_curve

    plot_loss_curve(run.metrics_path, run.loss_curve_path, title=title)
    model = JaxModel(base.spec, trained, base.tokenizer, base.mesh)
    export = backend.export(model, run.model_dir, adapters=trained_adapters(config, options, run))
    progress(f"[train] model written to {export.directory} ({export.fingerprint})")
    return TrainResult(result.steps, result.stopped_early, result.reason, export)


def check_jax_training(config: RunConfig, options: JaxTrainerOptions, *, rows: int) -> None:
    """The checks the jax-backend trainers share, before anything is compiled: the
    backend, the sequence length, the LoRA targets, and that ``rows`` (a micro-batch's
    rows) split evenly over the device mesh."""
    from tunix_jax.model.config import get_config

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
    from flax import nnx

    from tunix_jax.model.transformer import Transformer
    from tunix_jax.options import model_options
    from tunix_jax.train import mesh as mesh_lib
    from tunix_jax.train.lora import projection_names

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
    import jax

    layout = model_options(config.model.options)
    data, fsdp = mesh_lib.mesh_shape(jax.device_count(), layout.mesh_data, layout.mesh_fsdp)
    if rows % (data * fsdp):
        raise ConfigError(
            f"training.batch_size: {rows} rows cannot be split evenly over "
            f"{data * fsdp} devices (mesh data={data} x fsdp={fsdp})"
        )


class JaxTrainer:
    """The ``jax`` trainer (see the module docstring). One instance drives one run; the
    time budget counts from its creation. After every optimizer step it calls the run
    host's ``tunix_train_step_end`` (``context.hook``)."""

    def __init__(self) -> None:
        self.created_at = time.time()

    def validate(self, config: RunConfig, *, context: RunContext) -> None:
        check_jax_training(config, trainer_options(config), rows=config.training.batch_size)

    def train(
        self,
        config: RunConfig,
        run: RunDirectory,
        train_examples: Sequence[ReasoningExample],
        *,
        backend: ModelBackend,
        context: RunContext,
    ) -> TrainResult:
        from tunix_jax.train.loop import prepare_model, run_training, training_model

        progress = context.progress
        options = trainer_options(config)
        base = load_base(config, train_examples, backend, progress)
        examples = self._tokenize(config, train_examples, base, progress)
        outcome = run_training(
            config,
            run,
            examples,
            prepare_model(config, options, training_model(base.transformer, config, options)),
            options=options,
            mesh=base.mesh,
            started_at=self.created_at,
            progress=progress,
            step_hook=context.hook.tunix_train_step_end,
        )
        return export_trained(config, options, run, backend, base, outcome.model, outcome.result,
                              title=f"{config.model.preset} SFT loss", progress=progress)  # fmt: skip

    @staticmethod
    def _tokenize(
        config: RunConfig,
        train_examples: Sequence[ReasoningExample],
        base: JaxModel,
        progress: Callable[[str], None],
    ) -> list[TokenizedExample]:
        """Render every example in the chat format and tokenize it, saying what
        ``training.max_seq_len`` cut."""
        from tunix_jax.train.data import tokenize_pairs

        max_seq_len = config.training.max_seq_len
        system_prompt = config.dataset.system_prompt
        pairs = []
        for example in train_examples:
            rendered = render_example(example, system_prompt)
            pairs.append((rendered.prompt, rendered.completion))
        examples, report = tokenize_pairs(pairs, base.tokenizer, max_seq_len)
        if report.truncated or report.dropped:
            message = (
                f"[train] max_seq_len={max_seq_len}: {report.truncated} examples "
                f"truncated, {report.dropped} dropped (prompt fills the whole sequence)"
            )
            log.warning(message)
            progress(message)
        if not examples:
            raise DataError(
                f"every one of the {report.dropped} training examples was dropped: their prompts "
                f"fill training.max_seq_len={max_seq_len}; raise it"
            )
        return examples
