"""The ``google-tunix-grpo`` trainer: google-tunix's own ``GRPOLearner`` on an
``RLCluster`` (its rollout through its sampler, its reference log-probabilities, its
group-relative advantages, its GRPO loss, its actor trainer and checkpoints) on tunix's
prompts, with tunix's reward plugins as its reward functions, inside a tunix run.

The ``jax`` backend loads the base model; its parameters move into google-tunix's Gemma
module (LoRA through qwix when ``training.lora.enabled``; the reference is then the same
module without the adapters, otherwise a frozen copy). The prompts are rendered as for the
``grpo`` trainer. Each reward of ``trainer.options.rewards`` (loaded from the run host's
registry, ``context.rewards``) becomes one google-tunix reward function returning
``weight x score``; google-tunix sums them (a NaN score counts 0 there). Each step is one
global step of the learner: ``training.batch_size x training.grad_accum`` prompts,
``num_generations`` samples each, ``num_iterations`` updates. Around it the run gets the
``jax`` trainer's metrics lines (with each reward's mean and std), progress bar, NaN
guard, time budget and plugin hook. Checkpoints are the actor trainer's own, in
``checkpoints/actor``; ``--resume`` restores the newest (the actor trainer does when it is
built) and the learner skips the prompts it had read. The trained module (LoRA merged)
is exported through the ``jax`` backend as for ``google-tunix-sft``.

``trainer.options``: the ``grpo`` trainer's that google-tunix's learner has a counterpart
of; the others name google-tunix's lack.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import jax
import numpy as np

from tunix_core.config import RunConfig
from tunix_core.data.parse import parse_completion
from tunix_core.data.record import ReasoningExample
from tunix_core.errors import ConfigError, PluginError
from tunix_core.jsonio import read_jsonl
from tunix_core.protocols import ModelBackend, Reward, RunContext, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_google.requirements import refuse_unsupported, require
from tunix_google.sft import Counters, export_module, google_tunix_version
from tunix_jax.backend import JaxModel
from tunix_jax.dtypes import DTYPES
from tunix_jax.options import GrpoTrainerOptions, grpo_options
from tunix_jax.rl.grpo.trainer import PromptItem, loaded_rewards, prompt_items
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
from tunix_jax.training.data import IndexStream
from tunix_jax.training.loop import truncate_metrics
from tunix_jax.training.optim import build_optimizer
from tunix_jax.training.shared import check_jax_training, load_base

log = logging.getLogger("tunix.train")

NAME = "google-tunix-grpo"
# trainer.options of the grpo trainer that google-tunix's GRPOLearner has no counterpart of.
UNSUPPORTED_OPTIONS = {
    "packing": "GRPO rows are not packed",
    "remat": "its Gemma modules have no rematerialisation switch",
    "loss_chunk_tokens": "its GRPO loss takes the full logits at once",
    "compute_dtype": "its modules compute in the parameters' dtype (model.dtype)",
    "async_checkpoints": "its checkpoint manager decides how it saves",
    "scale_rewards": "its advantages are always divided by the group's reward std",
    "reward_normalization": "its advantages are normalised within each group only",
    "dynamic_sampling": "GRPOLearner samples each batch once",
    "max_refills": "GRPOLearner samples each batch once",
    "overlong_interval": "GRPOLearner has no overlong punishment",
    "overlong_max_tokens": "GRPOLearner has no overlong punishment",
    "mask_truncated": "GRPOLearner counts every completion in the loss",
}
# Values of those options that say what GRPOLearner does anyway, so they are accepted.
GOOGLE_BEHAVIOUR: dict[str, object] = {
    "packing": False,
    "remat": "none",
    "reward_normalization": "group",
    "dynamic_sampling": False,
    "mask_truncated": False,
}
# tunix's loss types as google-tunix's GRPOConfig fields (dr_grpo: its DrGRPOConfig).
LOSS_SETTINGS: dict[str, dict[str, str]] = {
    "grpo": {"loss_agg_mode": "sequence-mean-token-mean"},
    "dapo": {"loss_agg_mode": "token-mean"},
    "gspo": {"loss_algo": "gspo-token"},
    "dr_grpo": {},
}
# Prompts are left-padded to a multiple of this (a few compiled shapes per run).
PROMPT_MULTIPLE = 64


def rl_options(config: RunConfig) -> GrpoTrainerOptions:
    """``trainer.options`` structured as the ``grpo`` trainer's, after refusing the ones
    google-tunix cannot honour (one line naming the field)."""
    refuse_unsupported(config.trainer.options, NAME, UNSUPPORTED_OPTIONS, GOOGLE_BEHAVIOUR)
    if config.eval.during_training.every is not None:
        raise ConfigError(f"eval.during_training.every: not supported by {NAME}: "
                          "GRPOLearner runs its own loop between the steps")  # fmt: skip
    return grpo_options(config)


@attrs.define
class StepRecord:
    """What google-tunix reported during the step under way: the loss, gradient norm and
    aux of each micro-batch update, and each reward's scores and the completions."""

    updates: list[tuple[Any, Any]] = attrs.Factory(list)
    auxes: list[dict[str, Any]] = attrs.Factory(list)
    scores: dict[str, list[float]] = attrs.Factory(dict)
    completions: list[str] = attrs.Factory(list)
    began: float = attrs.Factory(time.monotonic)


def reward_function(
    name: str,
    weight: float,
    reward: Reward,
    items: Sequence[PromptItem],
    record: Callable[[], StepRecord],
    context: RunContext,
) -> Callable[..., list[float]]:
    """tunix reward ``name`` as a google-tunix reward function: ``weight x score`` of each
    completion, its prompt's item found by the batch's ``index`` column (google-tunix
    passes the batch's columns by name). The raw scores go to the step's record."""

    def call(prompts: list[str], completions: list[str], index: Any, **_: Any) -> list[float]:
        scored = [items[int(i)] for i in np.asarray(index).reshape(-1)]
        values = [float(s) for s in reward(list(prompts), list(completions),
                                           [item.expected for item in scored],
                                           [item.meta for item in scored], context=context)]  # fmt: skip
        if len(values) != len(completions) or any(math.isinf(v) for v in values):
            raise PluginError(f"reward {name!r} returned {values} for {len(completions)} "
                              "completions: one finite number each, or NaN")  # fmt: skip
        current = record()
        current.scores.setdefault(name, []).extend(values)
        if name == next(iter(current.scores)):  # the completions once, with the first reward
            current.completions.extend(completions)
        return [weight * v for v in values]

    call.__name__ = name  # google-tunix logs rewards/<__name__>
    return call


def reward_extras(record: StepRecord, weights: dict[str, float]) -> dict[str, float]:
    """The reward part of a step's ``metrics.jsonl`` line, as the ``grpo`` trainer logs
    it: the combined reward (each completion's weighted mean of the scores that apply)
    and each reward's mean, std and count of NaN scores, with the format rate."""
    extra: dict[str, float] = {}
    columns = {name: np.asarray(record.scores.get(name, []), np.float64) for name in weights}
    n = min((len(c) for c in columns.values()), default=0)
    if n:
        weighted = sum(np.where(np.isnan(c[:n]), 0.0, w * c[:n]) for (name, c), w
                       in zip(columns.items(), weights.values(), strict=True))  # fmt: skip
        applied = sum(np.where(np.isnan(c[:n]), 0.0, w) for c, w
                      in zip(columns.values(), weights.values(), strict=True))  # fmt: skip
        total = np.asarray(weighted) / np.where(np.asarray(applied) > 0, applied, np.nan)
        _put_mean_std(extra, "reward", total)
    for name, scores in columns.items():
        _put_mean_std(extra, f"reward/{name}", scores)
        extra[f"reward/{name}_nan"] = float(np.isnan(scores).sum())
    if record.completions:
        exact = [parse_completion(t).format_exact for t in record.completions]
        extra["format_rate"] = sum(exact) / len(exact)
    return extra


def _put_mean_std(extra: dict[str, float], key: str, values: np.ndarray) -> None:
    kept = values[~np.isnan(values)]
    if kept.size:
        extra[key], extra[f"{key}_std"] = float(kept.mean()), float(kept.std())


class GoogleTunixGrpoTrainer:
    """The ``google-tunix-grpo`` trainer (see the module docstring). One instance drives
    one run; the time budget counts from its creation."""

    def __init__(self) -> None:
        self.created_at = time.time()

    def validate(self, config: RunConfig, *, context: RunContext) -> None:
        options = rl_options(config)  # needs no google-tunix: its errors come first
        require(NAME)
        check_jax_training(
            config, options, rows=config.training.batch_size * options.num_generations
        )
        if options.max_new_tokens >= config.training.max_seq_len:
            raise ConfigError(
                f"trainer.options.max_new_tokens: {options.max_new_tokens} leaves no room for "
                f"the prompt in training.max_seq_len={config.training.max_seq_len}"
            )
        loaded_rewards(options, context)

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
        options = rl_options(config)
        base = load_base(config, train_examples, backend, progress)
        prompts = prompt_items(config, options, train_examples, base.tokenizer, progress)
        steps = total_steps(config, len(prompts))
        loop = GrpoRun(config, options, run, prompts, base, context, steps, self.created_at)
        reason = loop.train()
        result = TrainResult(loop.counters.step, bool(reason), reason)
        return export_module(config, run, backend, base, loop.trained_module(), result,
                             progress, title=f"{config.model.preset} GRPO (google-tunix)")  # fmt: skip


def total_steps(config: RunConfig, items: int) -> int:
    """``training.steps``, or the steps ``training.epochs`` take over ``items`` (prompts,
    pairs)."""
    training = config.training
    if training.epochs is None:
        return training.steps
    per_step = training.batch_size * training.grad_accum
    return max(1, math.ceil(training.epochs * items / per_step))


class GrpoRun:
    """One run of google-tunix's GRPOLearner, reporting tunix's steps."""

    def __init__(
        self,
        config: RunConfig,
        options: GrpoTrainerOptions,
        run: RunDirectory,
        prompts: list[PromptItem],
        base: JaxModel,
        context: RunContext,
        steps: int,
        started_at: float,
    ) -> None:
        self.config, self.options, self.run, self.prompts = config, options, run, prompts
        self.base, self.context, self.steps = base, context, steps
        self.progress = context.progress
        self.record = StepRecord()
        self.counters = Counters()
        self.weights = dict(options.rewards)
        self.budget = BudgetStop(TimeBudget.from_config(config, options, started_at), steps,
                                 save_seconds=lambda: DEFAULT_SAVE_SECONDS)  # fmt: skip
        self.stop_reason = ""
        self.saved: list[int] = []
        self.last_event: StepEnd | None = None  # its plugin hook waits for its checkpoint
        self.learner = self._learner()
        self.trainer = self.learner.rl_cluster.actor_trainer
        self._watch_updates()

    # -- building google-tunix's learner -------------------------------------------------

    def _learner(self) -> Any:
        import orbax.checkpoint as ocp
        from flax import nnx
        from tunix.rl import rl_cluster as rl_cluster_lib
        from tunix.rl.grpo import drgrpo_learner, grpo_learner
        from tunix.rl.rollout import base_rollout

        # optional: google-tunix and qwix (the extra google-tunix), checked by require()
        from tunix_google.modules import apply_lora, to_google_tunix

        config, options, training = self.config, self.options, self.config.training
        dtype = DTYPES[config.model.dtype]
        rows = training.batch_size * options.num_generations
        # One device, as google-tunix-sft: the axes its Gemma modules' shardings name.
        mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1), ("fsdp", "tp"))
        actor = to_google_tunix(self.base.transformer, dtype)
        # Placed on the mesh, so RLCluster takes the module as it is (no resharded copy)
        # and, with LoRA, sees the reference share the actor's weights.
        everywhere = jax.sharding.PartitionSpec()  # type: ignore[no-untyped-call]  # jaxlib has no stubs
        replicated = jax.sharding.NamedSharding(mesh, everywhere)
        nnx.update(actor, jax.device_put(nnx.state(actor), replicated))
        if training.lora.enabled:
            reference = actor  # the adapters left out: the base model, no second copy
            actor = apply_lora(actor, self.options.lora_targets, rank=training.lora.rank,
                               alpha=training.lora.alpha, seed=config.run.seed, batch=rows,
                               length=training.max_seq_len)  # fmt: skip
        else:  # the actor's update donates its arrays: the reference keeps copies
            graphdef, state = nnx.split(actor)
            reference = nnx.merge(graphdef, jax.tree.map(lambda x: x.copy(), state))
        tx, _ = build_optimizer(training, self.steps * options.num_iterations)
        self.run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        longest = max(len(item.ids) for item in self.prompts)
        prompt_length = min(training.max_seq_len - options.max_new_tokens,
                            -(-longest // PROMPT_MULTIPLE) * PROMPT_MULTIPLE)  # fmt: skip
        tokenizer = self.base.tokenizer
        roles = (
            rl_cluster_lib.Role.ACTOR,
            rl_cluster_lib.Role.REFERENCE,
            rl_cluster_lib.Role.ROLLOUT,
        )
        cluster_config = rl_cluster_lib.ClusterConfig(
            role_to_mesh=dict.fromkeys(roles, mesh),
            rollout_engine="vanilla",
            offload_to_cpu=False,
            training_config=rl_cluster_lib.RLTrainingConfig(
                actor_optimizer=tx,
                eval_every_n_steps=self.steps + 1,  # tunix evaluates after training
                max_steps=self.steps * options.num_iterations,
                mini_batch_size=training.batch_size * training.grad_accum,
                train_micro_batch_size=training.batch_size,
                checkpoint_root_directory=str(self.run.checkpoints_dir.absolute()),
                checkpointing_options=ocp.CheckpointManagerOptions(
                    save_interval_steps=training.checkpoint_every * options.num_iterations,
                    max_to_keep=training.keep_checkpoints,
                ),
            ),
            rollout_config=base_rollout.RolloutConfig(
                max_tokens_to_generate=options.max_new_tokens,
                max_prompt_length=prompt_length,
                kv_cache_size=prompt_length + options.max_new_tokens + 1,
                temperature=options.temperature,
                top_p=options.top_p,
                top_k=None,
                seed=config.run.seed,  # an int: the sampler donates a key array
                eos_tokens=list(tokenizer.stop_ids),
            ),
        )
        import sentencepiece as spm

        cluster = rl_cluster_lib.RLCluster(
            actor=actor,
            reference=reference if options.beta else None,
            tokenizer=spm.SentencePieceProcessor(model_proto=tokenizer.model_proto),
            cluster_config=cluster_config,
        )
        common = {"num_generations": options.num_generations,
                  "num_iterations": options.num_iterations, "beta": options.beta,
                  "epsilon": options.epsilon_low, **LOSS_SETTINGS[options.loss_type]}  # fmt: skip
        if options.loss_type == "dr_grpo":
            algo_config: Any = drgrpo_learner.DrGRPOConfig(**common)
            learner_class: Any = drgrpo_learner.DrGRPOLearner
        else:
            algo_config = grpo_learner.GRPOConfig(**common)
            learner_class = grpo_learner.GRPOLearner
        algo_config.epsilon_high = options.epsilon_high  # read when present (clip-higher)
        rewards = loaded_rewards(options, self.context)
        reward_fns = [
            reward_function(name, weight, rewards[name], self.prompts, lambda: self.record,
                            self.context)
            for name, weight in options.rewards.items()
        ]  # fmt: skip
        return learner_class(rl_cluster=cluster, algo_config=algo_config, reward_fns=reward_fns)

    def _watch_updates(self) -> None:
        """Hear each update of the actor trainer: its loss and gradient norm (buffered by
        ``_buffer_metrics``), its aux (``_post_process_train_step``) and the end of each
        optimizer update (its checkpoint manager's ``save``, called once after each)."""
        trainer = self.trainer
        buffer_metrics, post_process = trainer._buffer_metrics, trainer._post_process_train_step
        manager = trainer.checkpoint_manager
        save = manager.save

        def on_buffer(
            metrics_buffer: Any, loss: Any, step: int, additional_metrics: Any = None
        ) -> Any:
            grad_norm = (additional_metrics or {}).get("grad_norm", (np.nan, None))[0]
            self.record.updates.append((loss, grad_norm))
            return buffer_metrics(metrics_buffer, loss, step, additional_metrics)

        def on_aux(aux: Any) -> None:
            self.record.auxes.append({k: aux[k] for k in ("kl", "pg_clipfrac") if k in aux})
            post_process(aux)

        def on_save(step: int, model: Any, optimizer: Any = None, save_only_lora_params: bool = False,
                    force: bool = False, custom_metadata: Any = None) -> bool:  # fmt: skip
            # tunix's step: a global step of the learner, num_iterations updates.
            done = (
                step // self.options.num_iterations
                if step % self.options.num_iterations == 0
                else 0
            )
            if done > self.counters.step:
                self._step_end(done)
                self.metrics.flush()  # a checkpoint never holds a step whose metrics are not on disk
            saved = bool(save(step, model, optimizer, save_only_lora_params=save_only_lora_params,
                              force=force, custom_metadata=custom_metadata))  # fmt: skip
            if saved and step % self.options.num_iterations == 0:
                self.saved.append(step // self.options.num_iterations)
            if done and self.last_event is not None and self.last_event.step == done:
                self.hook.on_step(self.last_event)  # after the step's checkpoint, as its spec says
                self.last_event = None
            return saved

        trainer._buffer_metrics = on_buffer
        trainer._post_process_train_step = on_aux
        manager.save = on_save

    # -- the loop ------------------------------------------------------------------------

    def train(self) -> str:
        """The learner until ``steps`` or the time budget; returns why it stopped early
        ("" when every step ran)."""
        config, options, training = self.config, self.options, self.config.training
        restored = int(self.trainer.train_steps) // options.num_iterations
        self._resume(restored)
        self.progress(
            f"[train] google-tunix {google_tunix_version()} GRPOLearner "
            f"({options.loss_type} loss, "
            f"{'LoRA rank ' + str(training.lora.rank) if training.lora.enabled else 'full'}): "
            f"{self.steps} steps of {training.grad_accum} x {training.batch_size} prompts x "
            f"{options.num_generations} samples of up to {options.max_new_tokens} tokens "
            f"({len(self.prompts)} prompts), rewards {options.rewards}"
        )
        self.schedule = build_optimizer(training, self.steps * options.num_iterations)[1]
        self.metrics = MetricsLog(self.run.metrics_path, training.log_every, self.steps)
        self.bar = ProgressBar(self.steps, self.counters.step, enabled=options.progress_bar)
        self.callbacks: list[StepCallback] = [
            NanGuard(lambda: self.saved[-1] if self.saved else None), self.budget, self.bar,
            self.metrics,
        ]  # fmt: skip
        self.hook = PluginStepHook(self.context.hook.tunix_train_step_end, self.run)
        stream = IndexStream(len(self.prompts), training.batch_size * training.grad_accum,
                             config.run.seed)  # fmt: skip
        try:
            if self.counters.step < self.steps:
                self.learner.train(self._batches(stream, restored))
            self.metrics.flush()
        except TrainingDivergedError:
            self.metrics.flush()
            raise
        finally:
            self.bar.close()
            self.trainer.checkpoint_manager.close()
        if self.stop_reason:
            self.progress(f"[train] {self.stop_reason}")
        return self.stop_reason

    def _resume(self, step: int) -> None:
        """The counters of the step the actor trainer restored (0 without a checkpoint);
        later metrics lines are dropped."""
        truncate_metrics(self.run, step)
        if step == 0:
            return
        self.counters = Counters(step)
        last = [r for r in read_jsonl(self.run.metrics_path) if r.get("step") == step]
        if last:  # known only where the step logged a line (training.log_every)
            self.counters.tokens = int(last[-1]["tokens"])
            self.counters.train_seconds = float(last[-1]["elapsed_seconds"])
        self.progress(f"[train] resumed from google-tunix's checkpoint of step {step}")

    def _batches(self, stream: IndexStream, restored: int) -> Iterator[dict[str, np.ndarray]]:
        """Each step's prompts as the learner reads them (the rendered text and the item's
        index, for the rewards); the learner skips the ``restored`` steps' batches itself.
        Before a new step, the time budget may end the stream."""
        for served in range(self.steps):
            indices = stream.next_batch()
            if served >= restored:
                reason = self.budget.stop_reason(self.counters.step, time.time())
                if reason:
                    self.stop_reason = reason
                    return
            self.record = StepRecord()
            yield {"prompts": np.asarray([self.prompts[i].text for i in indices]),
                   "index": np.asarray(indices, np.int64)}  # fmt: skip

    def _step_end(self, step: int) -> None:
        """Step ``step``'s event: its metrics line, the callbacks (the plugins' hook runs
        after the checkpoint)."""
        record, options = self.record, self.options
        updates = np.asarray(jax.device_get(record.updates), np.float64).reshape(-1, 2)
        auxes = jax.device_get(record.auxes)
        seconds = time.monotonic() - record.began
        tokens = sum(len(self.base.tokenizer.encode(text)) for text in record.completions)
        self.counters.step = step
        self.counters.tokens += tokens
        self.counters.train_seconds += seconds
        extra = reward_extras(record, self.weights)
        for key, name in (("kl", "kl"), ("pg_clipfrac", "clip_fraction")):
            values = [float(aux[key]) for aux in auxes if key in aux]
            if values:
                extra[name] = float(np.mean(values))
        if record.completions:
            extra["completion_tokens"] = tokens / len(record.completions)
        event = StepEnd(
            step=step, loss=float(updates[:, 0].mean()), grad_norm=float(updates[-1, 1]),
            learning_rate=float(self.schedule(step * options.num_iterations - 1)),
            step_tokens=tokens, seconds=seconds, tokens_seen=self.counters.tokens,
            train_seconds=self.counters.train_seconds, extra=extra,
        )  # fmt: skip
        record.updates.clear()
        record.auxes.clear()
        for callback in self.callbacks:
            callback.on_step(event)
        self.last_event = event

    def trained_module(self) -> Any:
        return self.trainer.model
