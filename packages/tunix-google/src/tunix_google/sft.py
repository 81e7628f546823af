"""The ``google-tunix-sft`` trainer: google-tunix's own ``PeftTrainer`` (its train step,
loss, optimizer wrapper and checkpoint manager) on tunix's data, inside a tunix run.

The ``jax`` backend loads the base model; its parameters move into google-tunix's Gemma
module (LoRA through qwix when ``training.lora.enabled``). The examples are rendered and
tokenized as for the ``jax`` trainer, one example a row (google-tunix does not pack), with
the loss mask on the model turn only. Each optimizer step runs PeftTrainer's jitted train
step (``grad_accum`` times: its ``optax.MultiSteps`` updates on the last); around it the
run gets the ``jax`` trainer's metrics lines, progress bar, NaN guard, time budget and
plugin hook. Checkpoints are PeftTrainer's own, in ``checkpoints/``; ``--resume`` restores
the newest (PeftTrainer restores it when it is built) and the data stream skips the
batches it had read. At the end the trained module (LoRA merged) moves back into a
tunix-jax model, which the backend exports in the upstream layout; evaluation and
packaging then go through the ``jax`` backend as for any run.

``trainer.options``: those of the ``jax`` trainer that apply (``reserve_fraction``,
``deadline``, ``progress_bar``, ``lora_targets``); the others name google-tunix's lack.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import jax
import numpy as np

from tunix_core.config import RunConfig
from tunix_core.data.record import ReasoningExample
from tunix_core.jsonio import read_jsonl
from tunix_core.protocols import ModelBackend, RunContext, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_google.requirements import refuse_unsupported, require
from tunix_jax.backend import JaxModel
from tunix_jax.dtypes import DTYPES
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.options import JaxTrainerOptions, trainer_options
from tunix_jax.sft.trainer import JaxTrainer
from tunix_jax.training.callbacks import (
    DEFAULT_SAVE_SECONDS,
    BudgetStop,
    MetricsLog,
    NanGuard,
    PluginStepHook,
    ProgressBar,
    StepCallback,
    StepEnd,
    TimeBudget,
    TrainingDivergedError,
)
from tunix_jax.training.data import BatchStream
from tunix_jax.training.loop import total_steps, truncate_metrics
from tunix_jax.training.optim import build_optimizer
from tunix_jax.training.plots import plot_loss_curve
from tunix_jax.training.shared import check_jax_training, load_base

log = logging.getLogger("tunix.train")

NAME = "google-tunix-sft"
# trainer.options of the jax trainer that google-tunix's PeftTrainer has no counterpart of.
UNSUPPORTED_OPTIONS = {
    "packing": "PeftTrainer does not pack sequences (one example a row)",
    "remat": "its Gemma modules have no rematerialisation switch",
    "loss_chunk_tokens": "PeftTrainer's loss takes the full logits at once",
    "compute_dtype": "its modules compute in the parameters' dtype (model.dtype)",
    "async_checkpoints": "its checkpoint manager decides how it saves",
}
# Values of those options that say what PeftTrainer does anyway, so they are accepted.
GOOGLE_BEHAVIOUR: dict[str, object] = {"packing": False, "remat": "none"}


def sft_options(config: RunConfig) -> JaxTrainerOptions:
    """``trainer.options`` structured as the ``jax`` trainer's, after refusing the ones
    google-tunix cannot honour (one line naming the field)."""
    refuse_unsupported(config.trainer.options, NAME, UNSUPPORTED_OPTIONS, GOOGLE_BEHAVIOUR)
    return trainer_options(config)


def google_tunix_version() -> str:
    return metadata.version("google-tunix")


def training_input(batch: dict[str, np.ndarray]) -> Any:
    """A batch of unpacked rows as PeftTrainer's ``TrainingInput``: the whole sequence
    (inputs plus the last target, so ``max_seq_len + 1`` tokens, padding 0) and the loss
    mask on the tokens predicted (PeftTrainer's loss shifts both by one)."""
    from tunix.sft.peft_trainer import TrainingInput

    rows, length = batch["inputs"].shape
    real = batch["segment_ids"] != 0
    tokens = np.zeros((rows, length + 1), np.int32)
    tokens[:, :length] = batch["inputs"]
    tokens[:, 1:][real] = batch["targets"][real]
    loss_mask = np.zeros((rows, length + 1), bool)
    loss_mask[:, 1:] = batch["weights"] > 0
    return TrainingInput(input_tokens=tokens, input_mask=loss_mask)


def model_inputs(example: Any) -> dict[str, Any]:
    """PeftTrainer's model inputs of a ``TrainingInput`` (its notebooks' recipe: padding
    is token 0, positions count real tokens, attention is causal over them)."""
    from tunix.sft import utils

    padding = example.input_tokens != 0
    return {
        "input_tokens": example.input_tokens,
        "input_mask": example.input_mask,
        "positions": utils.build_positions_from_mask(padding),
        "attention_mask": utils.make_causal_attn_mask(padding),
    }


@attrs.define
class Counters:
    """The run's counters, restored from ``metrics.jsonl`` on resume."""

    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0


class GoogleTunixSftTrainer:
    """The ``google-tunix-sft`` trainer (see the module docstring). One instance drives
    one run; the time budget counts from its creation."""

    def __init__(self) -> None:
        self.created_at = time.time()

    def validate(self, config: RunConfig, *, context: RunContext) -> None:
        options = sft_options(config)  # needs no google-tunix: its errors come first
        require(NAME)
        check_jax_training(config, options, rows=config.training.batch_size)

    def train(
        self,
        config: RunConfig,
        run: RunDirectory,
        train_examples: Sequence[ReasoningExample],
        *,
        backend: ModelBackend,
        context: RunContext,
    ) -> TrainResult:
        require(NAME)
        progress = context.progress
        options = sft_options(config)
        base = load_base(config, train_examples, backend, progress)
        examples = JaxTrainer._tokenize(config, train_examples, base, progress)
        training = config.training
        stream = BatchStream(examples, training.batch_size, training.max_seq_len,
                             config.run.seed, packing=False)  # fmt: skip
        steps = total_steps(config, stream)
        trainer = peft_trainer(config, options, base.transformer, steps, run.checkpoints_dir)
        grad_accum = trainer.config.get_with_default("gradient_accumulation_steps", 1)
        counters = resume_counters(trainer, run, progress,
                                   skip=lambda: unpacked_input(stream)[1], batches=grad_accum)  # fmt: skip
        lora = training.lora
        progress(
            f"[train] google-tunix {google_tunix_version()} PeftTrainer, "
            f"{'LoRA rank ' + str(lora.rank) if lora.enabled else 'full fine-tune'}: "
            f"{steps} steps of {training.grad_accum} x {training.batch_size} rows x "
            f"{training.max_seq_len + 1} tokens ({stream.rows_per_epoch()} rows an epoch)"
        )
        reason = drive(config, options, run, trainer, counters, steps,
                       next_input=lambda: unpacked_input(stream), data=stream.state,
                       started_at=self.created_at, progress=progress,
                       step_hook=context.hook.tunix_train_step_end)  # fmt: skip
        return export_module(config, run, backend, base, trainer.model,
                             TrainResult(counters.step, bool(reason), reason), progress,
                             title=f"{config.model.preset} SFT loss (google-tunix)")  # fmt: skip


def peft_trainer(
    config: RunConfig, options: JaxTrainerOptions, transformer: Transformer, steps: int,
    checkpoints: Path,
) -> Any:  # fmt: skip
    """google-tunix's PeftTrainer as the ``google-tunix-sft`` trainer builds it for ``steps``
    steps: ``transformer``'s parameters in google-tunix's Gemma module (qwix LoRA on
    ``options.lora_targets`` when ``training.lora.enabled``), tunix's optimizer and
    schedule, its checkpoints in ``checkpoints`` (building it restores the newest there).
    ``benchmarks/peer_side.py`` times this trainer's :func:`micro_step`."""
    import orbax.checkpoint as ocp
    from tunix.sft import peft_trainer as peft_lib

    # optional: google-tunix and qwix (the extra google-tunix), checked by require()
    from tunix_google.modules import apply_lora, to_google_tunix

    training = config.training
    module = to_google_tunix(transformer, DTYPES[config.model.dtype])
    if training.lora.enabled:
        module = apply_lora(module, options.lora_targets, rank=training.lora.rank,
                            alpha=training.lora.alpha, seed=config.run.seed,
                            batch=training.batch_size, length=training.max_seq_len + 1)  # fmt: skip
    tx, _ = build_optimizer(training, steps)
    checkpoints.mkdir(parents=True, exist_ok=True)
    trainer_config = peft_lib.TrainingConfig(
        eval_every_n_steps=steps + 1,  # tunix evaluates after training, not during
        max_steps=steps,
        gradient_accumulation_steps=training.grad_accum if training.grad_accum > 1 else None,
        checkpoint_root_directory=str(checkpoints.absolute()),
        checkpointing_options=ocp.CheckpointManagerOptions(
            save_interval_steps=training.checkpoint_every,
            max_to_keep=training.keep_checkpoints,
        ),
        pbar_description=None,
    )
    trainer = peft_lib.PeftTrainer(module, tx, trainer_config)
    return trainer.with_gen_model_input_fn(model_inputs)


def micro_step(trainer: Any) -> Callable[[Any], tuple[Any, Any, Any]]:
    """A PeftTrainer's jitted train step on one micro-batch of its input, prepared
    (``_prepare_inputs``) and sharded as its own loop does: ``(loss, aux, grad_norm)``."""
    from tunix.sft import sharding_utils

    train_step, _ = trainer.jit_train_and_eval_step()

    def step(model_input: Any) -> tuple[Any, Any, Any]:
        example = sharding_utils.shard_input(
            trainer._prepare_inputs(model_input), trainer.config.data_sharding_axis
        )
        loss, aux, grad_norm = train_step(example)
        return loss, aux, grad_norm

    return step


def unpacked_input(stream: BatchStream) -> tuple[Any, int]:
    """The stream's next batch as PeftTrainer's input, and its real tokens."""
    batch = stream.next_batch()
    return training_input(batch), int((batch["segment_ids"] != 0).sum())


def resume_counters(
    trainer: Any,
    run: RunDirectory,
    progress: Callable[[str], None],
    *,
    skip: Callable[[], int],
    batches: int,
) -> Counters:
    """The counters of the step a PeftTrainer restored (0 without a checkpoint): ``skip``
    reads (and returns the tokens of) each of the ``batches`` micro-batches a step read,
    and later metrics lines are dropped."""
    step = int(trainer.train_steps)
    truncate_metrics(run, step)
    if step == 0:
        return Counters()
    counters = Counters(step)
    for _ in range(step * batches):  # the batches the restored steps read
        counters.tokens += skip()
    # Training time is known only where the step logged a line (training.log_every).
    last = [r for r in read_jsonl(run.metrics_path) if r.get("step") == step]
    if last:
        counters.train_seconds = float(last[-1]["elapsed_seconds"])
    progress(f"[train] resumed from google-tunix's checkpoint of step {step}")
    return counters


def drive(
    config: RunConfig,
    options: JaxTrainerOptions,
    run: RunDirectory,
    trainer: Any,
    counters: Counters,
    steps: int,
    *,
    next_input: Callable[[], tuple[Any, int]],
    data: Callable[[], dict[str, int]],
    started_at: float,
    progress: Callable[[str], None],
    step_hook: Callable[..., Any],
    step_extras: Callable[[list[Any]], dict[str, float]] = lambda auxes: {},
) -> str:
    """A PeftTrainer's train step until ``steps`` or the time budget, on the micro-batches
    of ``next_input`` (the trainer's input and its tokens; ``training.grad_accum`` a step,
    each through :func:`micro_step`), with tunix's metrics lines (plus ``step_extras`` of
    the step's aux outputs), checkpoints, NaN guard, budget, progress bar and plugin hook;
    returns why it stopped early ("" when every step ran). ``data``: the stream's
    position, for the step events."""
    training = config.training
    lora = training.lora.enabled
    train_step = micro_step(trainer)
    schedule = build_optimizer(training, steps)[1]
    metrics = MetricsLog(run.metrics_path, training.log_every, steps)
    saved: list[int] = []

    def save(step: int, *, force: bool) -> None:
        metrics.flush()  # a checkpoint never holds a step whose metrics are not on disk
        if trainer.checkpoint_manager.save(step, trainer.model, trainer.optimizer,
                                           save_only_lora_params=lora, force=force):  # fmt: skip
            saved.append(step)

    budget = BudgetStop(TimeBudget.from_config(config, options, started_at), steps,
                        save_seconds=lambda: DEFAULT_SAVE_SECONDS)  # fmt: skip
    bar = ProgressBar(steps, counters.step, enabled=options.progress_bar)
    callbacks: list[StepCallback] = [NanGuard(lambda: saved[-1] if saved else None), budget,
                                     bar, metrics]  # fmt: skip
    # The plugins' hook comes after the step's checkpoint, as its spec says.
    hook = PluginStepHook(step_hook, run)
    reason = ""
    try:
        while counters.step < steps:
            reason = budget.stop_reason(counters.step, time.time()) or ""
            if reason:
                progress(f"[train] {reason}")
                break
            began = time.monotonic()
            outputs, auxes, step_tokens = [], [], 0
            for _ in range(training.grad_accum):
                model_input, tokens = next_input()
                step_tokens += tokens
                loss, aux, grad_norm = train_step(model_input)
                outputs.append((loss, grad_norm))
                auxes.append(aux)
            values = np.asarray(jax.device_get(outputs), np.float64)
            seconds = time.monotonic() - began
            counters.step += 1
            counters.tokens += step_tokens
            counters.train_seconds += seconds
            event = StepEnd(
                step=counters.step, loss=float(values[:, 0].mean()),
                grad_norm=float(values[:, 1].mean()),
                learning_rate=float(schedule(counters.step - 1)), step_tokens=step_tokens,
                seconds=seconds, tokens_seen=counters.tokens,
                train_seconds=counters.train_seconds, data=data(),
                extra=step_extras(jax.device_get(auxes)),
            )  # fmt: skip
            for callback in callbacks:
                callback.on_step(event)
            if counters.step % training.checkpoint_every == 0:
                save(counters.step, force=False)
            hook.on_step(event)
        metrics.flush()
        if counters.step and counters.step not in saved:
            save(counters.step, force=True)
    except TrainingDivergedError:
        metrics.flush()
        raise
    finally:
        bar.close()
        trainer.checkpoint_manager.close()
    return reason


def export_module(
    config: RunConfig,
    run: RunDirectory,
    backend: ModelBackend,
    base: JaxModel,
    module: Any,
    result: TrainResult,
    progress: Callable[[str], None],
    *,
    title: str,
) -> TrainResult:
    """The trained google-tunix module (LoRA merged) back in a tunix-jax model, exported
    by the backend in the upstream layout, with the loss curve titled ``title``."""
    # optional: google-tunix and qwix (the extra google-tunix), checked by require()
    from tunix_google.modules import from_google_tunix

    plot_loss_curve(run.metrics_path, run.loss_curve_path, title=title)
    lora = config.training.lora
    transformer = from_google_tunix(module, base.transformer, lora_scale=lora.alpha / lora.rank)
    trained = JaxModel(base.spec, transformer, base.tokenizer, base.mesh)
    export = backend.export(trained, run.model_dir)
    progress(f"[train] model written to {export.directory} ({export.fingerprint})")
    return TrainResult(result.steps, result.stopped_early, result.reason, export)
