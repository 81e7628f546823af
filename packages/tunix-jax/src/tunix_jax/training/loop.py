"""The SFT training loop: a jitted step over a device mesh, the callbacks around it
(metrics, checkpoints, time budget, progress bar, NaN guard, plugin hook: see
:mod:`tunix_jax.training.callbacks`), and the final merged model.

The trainable parameters (LoRA adapters, or every weight) and the optimizer state are
plain nested dicts of arrays; the frozen weights stay an :class:`nnx.State`. One step
runs ``grad_accum`` micro-batches with ``jax.lax.scan``, sums the per-token losses and
divides once by the number of loss tokens, so accumulation and sharding leave the
result unchanged. A step whose loss or gradient norm is not finite keeps the previous
state (the update is selected away inside the step) and the run stops with
:class:`TrainingDivergedError`; nothing after the last good checkpoint is saved.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh

from tunix_core.config import RunConfig
from tunix_core.errors import TunixError
from tunix_core.jsonio import read_jsonl, write_text_atomic
from tunix_core.protocols import TrainResult
from tunix_core.rundir import RunDirectory
from tunix_jax import sharding as mesh_lib
from tunix_jax.dtypes import DTYPES
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.options import JaxTrainerOptions
from tunix_jax.training.callbacks import (
    BudgetStop,
    Checkpoints,
    MetricsLog,
    NanGuard,
    PluginStepHook,
    ProgressBar,
    StepCallback,
    StepEnd,
    TimeBudget,
    TrainingDivergedError,
)
from tunix_jax.training.checkpoint import Checkpointer
from tunix_jax.training.data import BATCH_KEYS, BatchStream, TokenizedExample
from tunix_jax.training.lora import apply_lora, merge_lora
from tunix_jax.training.loss import chunked_cross_entropy
from tunix_jax.training.optim import build_optimizer

log = logging.getLogger("tunix.train")


def training_model(
    loaded: Transformer, config: RunConfig, options: JaxTrainerOptions
) -> Transformer:
    """``loaded`` (the model as the backend loaded it, parameters in ``model.dtype``)
    rebuilt for training: the same parameters around a module graph that computes in
    ``trainer.options.compute_dtype`` with ``trainer.options.remat``. Loads nothing."""
    shell = nnx.eval_shape(
        lambda: Transformer(
            loaded.config,
            rngs=nnx.Rngs(0),
            dtype=DTYPES[options.compute_dtype],
            param_dtype=DTYPES[config.model.dtype],
            matmul_dtype=loaded.matmul_dtype,
            remat=options.remat,
        )
    )
    graphdef, _ = nnx.split(shell)
    # New variables around the same arrays (no copy): training writes into its own
    # variables, never into the backend's base model, which the baseline shares.
    state = jax.tree.map(lambda array: array, nnx.state(loaded))
    model: Transformer = nnx.merge(graphdef, state)
    return model


def trainable_filter(config: RunConfig) -> type[nnx.Variable[Any]]:
    return nnx.LoRAParam if config.training.lora.enabled else nnx.Param


def prepare_model(config: RunConfig, options: JaxTrainerOptions, model: Transformer) -> Transformer:
    """Add LoRA adapters (on ``options.lora_targets``) in place when LoRA is enabled."""
    lora = config.training.lora
    if lora.enabled:
        apply_lora(
            model, options.lora_targets, rank=lora.rank, alpha=lora.alpha, seed=config.run.seed
        )
    return model


def model_logits_fn(model: Transformer) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``(hidden, table) -> logits`` as ``model.logits_from_hidden`` computes them, with the
    tied embedding table as an explicit argument (so the loss can differentiate it)."""
    cap = model.config.final_logit_softcap

    def logits(hidden: jax.Array, table: jax.Array) -> jax.Array:
        out = model.embedder.logits(hidden, table)
        return out if cap is None else jnp.tanh(out / cap) * cap

    return logits


@attrs.frozen
class TrainState:
    """The model split for the train step: trainable params (a pure dict) and their
    optimizer state, the frozen rest, and what the step needs to merge them back."""

    graphdef: nnx.GraphDef[Transformer]
    template: Any  # trainable state as ShapeDtypeStructs
    params: Any
    frozen: nnx.State[Any, Any]
    opt_state: Any

    @classmethod
    def create(
        cls, model: Transformer, config: RunConfig, mesh: Mesh, tx: optax.GradientTransformation
    ) -> TrainState:
        """Split ``model`` by ``trainable_filter(config)`` and shard everything over ``mesh``."""
        graphdef, trainable, *rest = nnx.split(model, trainable_filter(config), ...)
        (frozen,) = rest
        template = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),  # type: ignore[no-untyped-call]  # unannotated in jax
            trainable,
        )
        params = nnx.to_pure_dict(trainable)
        params = jax.device_put(params, mesh_lib.state_shardings(mesh, params))
        frozen = jax.device_put(frozen, mesh_lib.state_shardings(mesh, frozen))
        opt_state = jax.jit(tx.init)(params)
        opt_state = jax.device_put(opt_state, mesh_lib.state_shardings(mesh, opt_state))
        return cls(graphdef, template, params, frozen, opt_state)


def make_train_step(
    graphdef: nnx.GraphDef[Transformer],
    template: nnx.State[Any, Any],
    tx: optax.GradientTransformation,
    *,
    packing: bool,
    chunk_tokens: int,
    table_grad: bool,
    merge_rows: bool = False,
) -> Callable[..., Any]:
    """``step(params, opt_state, frozen, batches) -> (params, opt_state, metrics)`` where
    every leaf of ``batches`` is [grad_accum, batch, seq]. ``table_grad``: whether the
    embedding (the tied LM head) is trained; ``merge_rows``: the loss chunks the weighted
    tokens of all rows together (a batch that one device holds whole)."""

    def micro_loss(
        params: Any, frozen: nnx.State[Any, Any], batch: dict[str, jax.Array]
    ) -> tuple[jax.Array, jax.Array]:
        trainable = jax.tree.map(lambda x: x, template)
        nnx.replace_by_pure_dict(trainable, params)
        model = nnx.merge(graphdef, trainable, frozen)
        mask = segment_attention_mask(batch["segment_ids"]) if packing else None
        # Unpacked rows are right-padded: plain causal attention never sees the padding.
        hidden = model.hidden_states(batch["inputs"], batch["positions"], mask)
        return chunked_cross_entropy(
            hidden,
            model.embedder.input_embedding[...],
            batch["targets"],
            batch["weights"],
            model_logits_fn(model),
            chunk_tokens=chunk_tokens,
            table_grad=table_grad,
            merge_rows=merge_rows,
        )

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def step(
        params: Any, opt_state: Any, frozen: nnx.State[Any, Any], batches: dict[str, jax.Array]
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        (loss_sum, weight_sum), grads = accumulate_gradients(grad_fn, params, frozen, batches)
        denominator = jnp.maximum(weight_sum, 1.0)
        grads = jax.tree.map(lambda g: g / denominator, grads)
        loss = loss_sum / denominator
        new_params, new_opt_state, grad_norm = guarded_update(tx, grads, opt_state, params, loss)
        tokens = jnp.sum(batches["segment_ids"] != 0)
        return new_params, new_opt_state, {"loss": loss, "grad_norm": grad_norm, "tokens": tokens}

    return step


def accumulate_gradients(
    grad_fn: Callable[..., Any], params: Any, frozen: nnx.State[Any, Any], batches: dict[str, jax.Array]
) -> tuple[Any, Any]:
    """``((loss, aux), grads)`` of ``grad_fn(params, frozen, batch)`` summed over the
    micro-batches of ``batches`` (every leaf [grad_accum, ...]); ``loss``, ``aux`` and the
    gradients must be sums over tokens, so the caller divides once by the token count."""
    if batches["inputs"].shape[0] == 1:
        # No accumulation loop: XLA optimises a straight-line step better.
        single: tuple[Any, Any] = grad_fn(params, frozen, jax.tree.map(lambda x: x[0], batches))
        return single

    def add(total: Any, micro_batch: dict[str, jax.Array]) -> tuple[Any, None]:
        return jax.tree.map(jnp.add, total, grad_fn(params, frozen, micro_batch)), None

    first = jax.tree.map(lambda x: x[0], batches)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(grad_fn, params, frozen, first))
    total: tuple[Any, Any]
    total, _ = jax.lax.scan(add, zeros, batches)
    return total


def guarded_update(
    tx: optax.GradientTransformation, grads: Any, opt_state: Any, params: Any, loss: jax.Array
) -> tuple[Any, Any, jax.Array]:
    """(params, optimizer state, gradient norm) after one update with ``grads``; when the
    loss or the gradient norm is not finite the old params and state are kept (the NaN
    guard then stops the run)."""
    grad_norm = optax.tree.norm(grads)
    updates, new_opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
    return jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_opt_state, opt_state), grad_norm


def segment_attention_mask(segment_ids: jax.Array) -> jax.Array:
    """[B, T, T] bool: causal and within one segment, never to padding (segment 0)."""
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    real = (segment_ids != 0)[:, None, :]
    length = segment_ids.shape[1]
    causal = jnp.arange(length)[None, :] <= jnp.arange(length)[:, None]
    return same & real & causal[None]


def total_steps(config: RunConfig, stream: BatchStream) -> int:
    """``training.steps``, or the steps ``training.epochs`` take when that is set."""
    training = config.training
    if training.epochs is None:
        return training.steps
    rows_per_step = training.batch_size * training.grad_accum
    return max(1, math.ceil(training.epochs * stream.rows_per_epoch() / rows_per_step))


def truncate_metrics(run: RunDirectory, step: int) -> None:
    """Drop metrics of steps after ``step`` (logged before a crash, redone on resume);
    process 0 writes the metrics, so only it truncates them."""
    if jax.process_index() != 0 or not run.metrics_path.exists():
        return
    kept = [r for r in read_jsonl(run.metrics_path) if int(r.get("step", 0)) <= step]
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in kept)
    write_text_atomic(run.metrics_path, text)


def _stacked_batch(stream: BatchStream, accum: int) -> dict[str, np.ndarray]:
    batches = [stream.next_batch() for _ in range(accum)]
    return {k: np.stack([b[k] for b in batches]) for k in BATCH_KEYS}


@attrs.define
class TrainOutcome:
    """What :func:`run_training` ends with: the trained parameters put back in the model."""

    model: Transformer
    result: TrainResult


def run_training(
    config: RunConfig,
    run: RunDirectory,
    examples: Sequence[TokenizedExample],
    model: Transformer,
    *,
    options: JaxTrainerOptions,
    mesh: Mesh,
    started_at: float,
    progress: Callable[[str], None],
    step_hook: Callable[..., Any] | None = None,
    step_eval: Callable[[StepEnd], dict[str, float]] | None = None,
) -> TrainOutcome:
    """Train ``model`` (already LoRA-wrapped if LoRA is on), resuming from the run's
    latest checkpoint; on return the model holds the trained weights (adapters unmerged).
    ``mesh``: the devices to train on (the backend's ``model.options`` layout).
    ``step_hook``: called as ``tunix_train_step_end(step=, metrics=, run=)`` after each step;
    ``step_eval``: see :func:`drive_steps`."""
    training = config.training
    stream = BatchStream(
        examples, training.batch_size, training.max_seq_len, config.run.seed, options.packing
    )
    steps = total_steps(config, stream)
    tx, schedule = build_optimizer(training, steps)
    state = TrainState.create(model, config, mesh, tx)
    checkpointer = Checkpointer(
        run.checkpoints_dir, keep=training.keep_checkpoints, async_save=options.async_checkpoints
    )
    position = resume(checkpointer, state, stream, run, progress, seed=config.run.seed)
    describe(config, stream, steps, position, mesh, progress)
    step_fn = _compile_step(state, tx, config, options, mesh)
    batch_sharding = mesh_lib.batch_sharding(mesh, leading_axes=1)

    def take_step() -> StepEnd:
        host_batch = _stacked_batch(stream, training.grad_accum)
        batch = {k: mesh_lib.put_global(v, batch_sharding) for k, v in host_batch.items()}
        return position.advance(step_fn, state.frozen, batch, schedule, stream)

    reason = drive_steps(config, options, run, checkpointer, steps=steps, position=position,
                         started_at=started_at, progress=progress, step_hook=step_hook,
                         take_step=take_step, step_eval=step_eval)  # fmt: skip
    return outcome(config, state, position, stopped_early=bool(reason), reason=reason)


def drive_steps(
    config: RunConfig,
    options: JaxTrainerOptions,
    run: RunDirectory,
    checkpointer: Checkpointer,
    *,
    steps: int,
    position: Position,
    started_at: float,
    progress: Callable[[str], None],
    step_hook: Callable[..., Any] | None,
    take_step: Callable[[], StepEnd],
    step_eval: Callable[[StepEnd], dict[str, float]] | None = None,
) -> str:
    """Call ``take_step`` until ``position`` reaches ``steps`` or the time budget says
    stop, handing each :class:`StepEnd` to the callbacks every trainer shares (NaN guard,
    budget, progress bar, metrics, checkpoints, the plugins' hook). ``step_eval``
    (``eval.during_training``) adds its metrics to a finite step's first. Closes
    ``checkpointer``. Returns why it stopped early, or "" when every step ran."""
    training = config.training
    is_writer = jax.process_index() == 0
    metrics = MetricsLog(run.metrics_path, training.log_every, steps, writer=is_writer)
    checkpoints = Checkpoints(checkpointer, training.checkpoint_every, steps, config.run.seed,
                              before_save=metrics.flush, last_saved=checkpointer.latest_step())  # fmt: skip
    budget = BudgetStop(TimeBudget.from_config(config, options, started_at), steps,
                        save_seconds=lambda: checkpoints.save_seconds)  # fmt: skip
    bar = ProgressBar(steps, position.step, enabled=options.progress_bar and is_writer)
    callbacks: list[StepCallback] = [
        NanGuard(lambda: checkpoints.last_saved),
        budget,
        bar,
        metrics,
        checkpoints,
    ]
    if step_hook is not None and is_writer:
        callbacks.append(PluginStepHook(step_hook, run))

    reason = ""
    try:
        while position.step < steps:
            reason = budget.stop_reason(position.step, time.time()) or ""
            # Every step is a collective over all processes: they stop where process 0 does.
            if mesh_lib.decided_by_process_zero(bool(reason)) != bool(reason):
                reason = "" if reason else "process 0 stopped at its time budget"
            if reason:
                progress(f"[train] {reason}")
                break
            event = take_step()
            if step_eval is not None and event.finite:
                event = attrs.evolve(event, extra={**event.extra, **step_eval(event)})
            for callback in callbacks:
                callback.on_step(event)
        metrics.flush()
        checkpoints.finish()
    except TrainingDivergedError:
        metrics.flush()  # the good steps before the bad one
        raise
    finally:
        bar.close()
        checkpointer.wait()
        checkpointer.close()
    return reason


@attrs.define
class Position:
    """The trainable state and the run's counters, advanced one optimizer step at a time."""

    params: Any
    opt_state: Any
    step: int = 0
    tokens: int = 0
    train_seconds: float = 0.0

    def advance(
        self,
        step_fn: Callable[..., Any],
        frozen: nnx.State[Any, Any],
        batch: dict[str, jax.Array],
        schedule: optax.Schedule,
        stream: BatchStream,
    ) -> StepEnd:
        """Run one step on ``batch`` and say how it went."""
        began = time.monotonic()
        self.params, self.opt_state, metrics = step_fn(self.params, self.opt_state, frozen, batch)
        values = jax.device_get(metrics)
        seconds = time.monotonic() - began
        step_tokens = int(values["tokens"])
        self.step += 1
        self.tokens += step_tokens
        self.train_seconds += seconds
        return StepEnd(
            step=self.step, loss=float(values["loss"]), grad_norm=float(values["grad_norm"]),
            learning_rate=float(schedule(self.step - 1)), step_tokens=step_tokens,
            seconds=seconds, tokens_seen=self.tokens, train_seconds=self.train_seconds,
            params=self.params, opt_state=self.opt_state, data=stream.state(),
        )  # fmt: skip


class StreamPosition(Protocol):
    """A data stream whose position a checkpoint's meta holds (``data``)."""

    def restore(self, state: dict[str, int]) -> None: ...


def resume(
    checkpointer: Checkpointer,
    state: TrainState,
    stream: StreamPosition,
    run: RunDirectory,
    progress: Callable[[str], None],
    *,
    seed: int,
) -> Position:
    """The position of the run's newest good checkpoint (the data stream moved there
    too), or the start; metrics logged after it (before a crash) are dropped, to be redone.
    Damaged or mismatched newer checkpoints are named, skipped and deleted (training writes
    their steps again); when none is good the run stops with how to start over."""
    good, skipped = checkpointer.newest_good(
        state.params, state.opt_state, lambda step, meta: _meta_problem(step, meta, seed)
    )
    for bad in skipped:
        progress(f"[train] skipped checkpoint {bad.path}: {bad.reason}")
    if good is None and skipped:
        raise TunixError(
            f"no usable checkpoint in {checkpointer.directory} (damaged files, or the "
            "configuration changed since they were written); to train from the start, delete "
            f"that folder and run `tunix run --resume {run.path}`"
        )
    if good is None:
        truncate_metrics(run, 0)
        return Position(state.params, state.opt_state)
    for bad in skipped:
        checkpointer.delete(int(bad.path.name))
    meta = good.meta
    position = Position(good.params, good.opt_state, good.step, int(meta["tokens"]),
                        float(meta["train_seconds"]))  # fmt: skip
    stream.restore(meta["data"])
    truncate_metrics(run, position.step)
    progress(f"[train] resumed from the checkpoint of step {position.step}")
    return position


def _meta_problem(step: int, meta: dict[str, Any], seed: int) -> str | None:
    """Why a checkpoint's meta is not that of step ``step`` of a run seeded ``seed``;
    ``None`` when it is."""
    data = meta.get("data")
    if meta.get("step") != step:
        return f"its meta names step {meta.get('step')!r}"
    if meta.get("seed") != seed:
        return f"its meta names seed {meta.get('seed')!r}, this run's is {seed}"
    if not isinstance(meta.get("tokens"), int) or meta["tokens"] < 0:
        return f"its meta has tokens {meta.get('tokens')!r}, expected a count"
    seconds = meta.get("train_seconds")
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds < 0:
        return f"its meta has train_seconds {seconds!r}, expected seconds"
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), int) and data[key] >= 0 for key in ("epoch", "cursor")
    ):
        return f"its meta has data {data!r}, expected the stream position (epoch, cursor)"
    return None


def describe(
    config: RunConfig,
    stream: BatchStream,
    steps: int,
    position: Position,
    mesh: Any,
    progress: Callable[[str], None],
) -> None:
    training = config.training
    trainable_count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(position.params))
    progress(
        f"[train] {steps} steps of {training.grad_accum} x {training.batch_size} rows x "
        f"{training.max_seq_len} tokens ({stream.rows_per_epoch()} rows an epoch), "
        f"{trainable_count:,} trainable parameters, mesh {dict(mesh.shape)}"
    )


def _compile_step(
    state: TrainState, tx: optax.GradientTransformation, config: RunConfig,
    options: JaxTrainerOptions, mesh: Mesh,
) -> Callable[..., Any]:  # fmt: skip
    """The jitted train step; it donates (overwrites) the params and optimizer state."""
    training = config.training
    param_shardings = jax.tree.map(lambda x: x.sharding, state.params)
    opt_shardings = jax.tree.map(lambda x: x.sharding, state.opt_state)
    return jax.jit(
        make_train_step(
            state.graphdef,
            state.template,
            tx,
            packing=options.packing,
            chunk_tokens=options.loss_chunk_tokens,
            table_grad=not training.lora.enabled,
            merge_rows=mesh.size == 1,
        ),
        donate_argnums=(0, 1),
        out_shardings=(param_shardings, opt_shardings, None),
    )


def outcome(
    config: RunConfig, state: TrainState, position: Position, *, stopped_early: bool, reason: str
) -> TrainOutcome:
    """The trained params put back into the model (LoRA merged)."""
    trainable = jax.tree.map(lambda x: x, state.template)
    nnx.replace_by_pure_dict(trainable, position.params)
    trained = nnx.merge(state.graphdef, trainable, state.frozen)
    if config.training.lora.enabled:
        merge_lora(trained)
    result = TrainResult(steps=position.step, stopped_early=stopped_early, reason=reason)
    return TrainOutcome(trained, result)
