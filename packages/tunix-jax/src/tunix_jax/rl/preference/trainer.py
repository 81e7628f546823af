"""The ``dpo``, ``simpo`` and ``orpo`` trainers: preference optimisation on pairs of
completions to one prompt, the chosen one and the rejected one.

The pairs come from ``trainer.options.pairs`` (:mod:`.data`), rendered in the
competition format with the run's system prompt; the dataset's own split still feeds
the baseline and the evaluation. Each step draws ``training.batch_size x
training.grad_accum`` pairs in a seeded order that a resumed run repeats, scores both
completions of each (the summed log-probabilities of their tokens: the model turn only,
its ``<end_of_turn>`` included) and minimises the mean of the pairs' losses
(:mod:`.losses`). DPO also scores them under the reference, the model the run starts
from (``model.weights``, ``--init-from`` or the previous phase): with LoRA the base
model with the adapters at zero, so no second copy of the weights is held; a full
fine-tune keeps a frozen copy. SimPO and ORPO need no reference.

Checkpoints, exact resume, time budget, NaN guard, progress bar, metrics and the
plugins' step hook are the SFT trainer's; the batches are GRPO's (logits only at
completion positions, a chunk at a time).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import attrs
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from tunix_core.config import RunConfig, structure
from tunix_core.data.record import ReasoningExample
from tunix_core.errors import ConfigError, DataError
from tunix_core.protocols import ModelBackend, RunContext, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_jax import sharding as mesh_lib
from tunix_jax.models.gemma.tokenizer import Tokenizer
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.options import (
    DpoTrainerOptions,
    OrpoTrainerOptions,
    PreferenceTrainerOptions,
    SimpoTrainerOptions,
)
from tunix_jax.rl.grpo.algorithm import (
    LogitsFn,
    build_rows,
    completion_logprobs,
    make_logprobs_fn,
    merged_model,
)
from tunix_jax.rl.preference.data import PreferencePair, load_pairs
from tunix_jax.rl.preference.losses import (
    PairLoss,
    dpo_loss,
    orpo_loss,
    preference_accuracy,
    simpo_loss,
)
from tunix_jax.training.callbacks import StepEnd
from tunix_jax.training.checkpoint import Checkpointer
from tunix_jax.training.data import IndexStream
from tunix_jax.training.loop import (
    Position,
    TrainState,
    accumulate_gradients,
    drive_steps,
    guarded_update,
    model_logits_fn,
    outcome,
    prepare_model,
    resume,
    training_model,
)
from tunix_jax.training.optim import build_optimizer
from tunix_jax.training.shared import check_jax_training, export_trained, load_base
from tunix_jax.training.step_eval import StepEvaluation

log = logging.getLogger("tunix.train")
# Row lengths are rounded up to this multiple (one compiled shape per run).
LENGTH_MULTIPLE = 8


class PairScores(NamedTuple):
    """Per pair ([N] each): summed log-probabilities and token counts of both
    completions, and the reference's log-probabilities (zeros without a reference)."""

    chosen_logps: jax.Array
    rejected_logps: jax.Array
    chosen_tokens: jax.Array
    rejected_tokens: jax.Array
    ref_chosen_logps: jax.Array
    ref_rejected_logps: jax.Array


PairLossFn = Callable[[PairScores], PairLoss]


@attrs.frozen
class TokenizedPair:
    """A pair's prompt (with BOS) and completions as token ids."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]


def pair_scores(token_logps: jax.Array, mask: jax.Array, ref_logps: jax.Array) -> PairScores:
    """:class:`PairScores` of rows laid out chosen, rejected, chosen, ...: ``token_logps``
    and ``mask`` [2N, C], ``ref_logps`` [2N] (sequence sums)."""
    mask = mask.astype(jnp.float32)
    sums = jnp.sum(token_logps * mask, axis=1).reshape(-1, 2)
    tokens = jnp.sum(mask, axis=1).reshape(-1, 2)
    ref = ref_logps.reshape(-1, 2)
    return PairScores(sums[:, 0], sums[:, 1], tokens[:, 0], tokens[:, 1], ref[:, 0], ref[:, 1])


def make_preference_step(
    graphdef: nnx.GraphDef[Transformer],
    template: Any,
    tx: optax.GradientTransformation,
    logits_fn: Callable[[Transformer], LogitsFn],
    pair_loss: PairLossFn,
    *,
    chunk_tokens: int,
    merge_rows: bool = False,
) -> Callable[..., Any]:
    """``step(params, opt_state, frozen, batches) -> (params, opt_state, metrics)``, every
    leaf of ``batches`` [grad_accum, ...]: the rows of :func:`pair_rows` and
    ``ref_logprobs``. The loss is summed over the step's pairs and divided once by their
    number, so gradient accumulation leaves it unchanged. ``merge_rows``: see
    `chunked_token_logprobs` (for a batch on one device)."""

    def micro_loss(
        params: Any, frozen: nnx.State[Any, Any], batch: dict[str, jax.Array]
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        model = merged_model(graphdef, template, params, frozen)
        token_logps = completion_logprobs(model, batch, logits_fn(model), temperature=1.0,
                                          chunk_tokens=chunk_tokens, merge_rows=merge_rows)  # fmt: skip
        scores = pair_scores(token_logps, batch["mask"], batch["ref_logprobs"])
        loss = pair_loss(scores)
        sums = {
            "pairs": jnp.asarray(loss.losses.shape[0], jnp.float32),
            "tokens": jnp.sum(scores.chosen_tokens + scores.rejected_tokens),
            "chosen_reward": jnp.sum(loss.chosen_rewards),
            "rejected_reward": jnp.sum(loss.rejected_rewards),
            "accuracy": jnp.sum(preference_accuracy(loss)),
            "chosen_logps": jnp.sum(scores.chosen_logps),
            "rejected_logps": jnp.sum(scores.rejected_logps),
        }
        return jnp.sum(loss.losses), sums

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def step(
        params: Any, opt_state: Any, frozen: nnx.State[Any, Any], batches: dict[str, jax.Array]
    ) -> tuple[Any, Any, dict[str, jax.Array]]:
        (loss_sum, sums), grads = accumulate_gradients(grad_fn, params, frozen, batches)
        pairs = sums["pairs"]
        grads = jax.tree.map(lambda g: g / pairs, grads)
        loss = loss_sum / pairs
        new_params, new_opt_state, grad_norm = guarded_update(tx, grads, opt_state, params, loss)
        metrics = {
            key: value / pairs for key, value in sums.items() if key not in ("pairs", "tokens")
        }
        metrics.update(loss=loss, grad_norm=grad_norm, tokens=sums["tokens"])
        return new_params, new_opt_state, metrics

    return step


def pair_rows(
    pairs: Sequence[TokenizedPair], *, pad_id: int, length: int, completion_length: int
) -> dict[str, np.ndarray]:
    """GRPO's rows (``inputs``, ``positions``, ``gather``, ``targets``, ``mask``) of the
    pairs' completions, each pair's chosen row right before its rejected one."""
    prompts = [pair.prompt for pair in pairs for _ in range(2)]
    completions = [ids for pair in pairs for ids in (pair.chosen, pair.rejected)]
    return build_rows(prompts, completions, [True] * len(prompts), pad_id=pad_id,
                      length=length, completion_length=completion_length)  # fmt: skip


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def tokenize_pairs(
    pairs: Sequence[PreferencePair],
    tokenizer: Tokenizer,
    max_seq_len: int,
    progress: Callable[[str], None],
) -> list[TokenizedPair]:
    """Every pair tokenized; a pair whose prompt and longer completion exceed
    ``training.max_seq_len`` is dropped (and counted), never cut: a cut could leave the
    two completions the same."""
    kept, dropped = [], 0
    for pair in pairs:
        tokenized = TokenizedPair(tokenizer.encode(pair.prompt, add_bos=True),
                                  tokenizer.encode(pair.chosen), tokenizer.encode(pair.rejected))  # fmt: skip
        # A row's last token is only a target: max_seq_len inputs hold max_seq_len + 1 tokens.
        if (
            len(tokenized.prompt) + max(len(tokenized.chosen), len(tokenized.rejected))
            > max_seq_len + 1
        ):
            dropped += 1
            continue
        kept.append(tokenized)
    if dropped:
        message = (f"[train] {dropped} of {len(pairs)} preference pairs dropped: prompt and "
                   f"completion longer than training.max_seq_len={max_seq_len} tokens")  # fmt: skip
        log.warning(message)
        progress(message)
    if not kept:
        raise DataError(f"every one of the {len(pairs)} preference pairs is longer than "
                        f"training.max_seq_len={max_seq_len} tokens; raise it")  # fmt: skip
    return kept


class PreferenceTrainer:
    """What the three preference trainers share (see the module docstring); a subclass
    names its options and its loss. The time budget counts from the trainer's creation;
    after every step it calls the run host's ``tunix_train_step_end`` (``context.hook``)."""

    title: ClassVar[str]
    options_class: ClassVar[type[PreferenceTrainerOptions]]
    uses_reference: ClassVar[bool] = False

    def __init__(self) -> None:
        self.created_at = time.time()

    def options(self, config: RunConfig) -> PreferenceTrainerOptions:
        """``trainer.options``, structured (errors name ``trainer.options.<field>``)."""
        return structure(config.trainer.options, self.options_class, source="config",
                         root="trainer.options")  # fmt: skip

    def pair_loss(self, options: Any) -> PairLossFn:
        raise NotImplementedError

    def pairs(self, config: RunConfig, options: PreferenceTrainerOptions) -> list[PreferencePair]:
        if options.pairs is None:
            raise ConfigError(
                f"trainer.options.pairs: the {config.trainer.name} trainer needs preference "
                "records: a JSONL file (or hf:PATH) of prompt/chosen/rejected"
            )
        return load_pairs(options.pairs, config.dataset.system_prompt)

    def validate(self, config: RunConfig, *, context: RunContext) -> None:
        options = self.options(config)
        check_jax_training(config, options, rows=config.training.batch_size * 2)
        self.pairs(config, options)  # bad records fail before the run writes anything

    def train(
        self,
        config: RunConfig,
        run: RunDirectory,
        train_examples: Sequence[ReasoningExample],
        *,
        backend: ModelBackend,
        context: RunContext,
    ) -> TrainResult:
        progress = context.progress
        options = self.options(config)
        pairs = self.pairs(config, options)
        base = load_base(config, train_examples, backend, progress)
        tokenized = tokenize_pairs(pairs, base.tokenizer, config.training.max_seq_len, progress)
        policy = prepare_model(config, options, training_model(base.transformer, config, options))
        loop = PreferenceLoop(config, options, run, tokenized, policy, base, context,
                              self.created_at, self.pair_loss(options),
                              uses_reference=self.uses_reference, title=self.title)  # fmt: skip
        result, trained_model = loop.train()
        return export_trained(config, options, run, backend, base, trained_model, result,
                              title=f"{config.model.preset} {self.title}", progress=progress)  # fmt: skip


class DpoTrainer(PreferenceTrainer):
    """``dpo``: Direct Preference Optimization (Rafailov et al. 2023)."""

    title = "DPO"
    options_class = DpoTrainerOptions
    uses_reference = True

    def pair_loss(self, options: DpoTrainerOptions) -> PairLossFn:
        def loss(s: PairScores) -> PairLoss:
            return dpo_loss(s.chosen_logps, s.rejected_logps, s.ref_chosen_logps,
                            s.ref_rejected_logps, beta=options.beta)  # fmt: skip

        return loss


class SimpoTrainer(PreferenceTrainer):
    """``simpo``: Simple Preference Optimization (Meng et al. 2024), no reference."""

    title = "SimPO"
    options_class = SimpoTrainerOptions

    def pair_loss(self, options: SimpoTrainerOptions) -> PairLossFn:
        def loss(s: PairScores) -> PairLoss:
            return simpo_loss(s.chosen_logps, s.rejected_logps, s.chosen_tokens,
                              s.rejected_tokens, beta=options.beta, gamma=options.gamma)  # fmt: skip

        return loss


class OrpoTrainer(PreferenceTrainer):
    """``orpo``: Odds Ratio Preference Optimization (Hong et al. 2024), no reference."""

    title = "ORPO"
    options_class = OrpoTrainerOptions

    def pair_loss(self, options: OrpoTrainerOptions) -> PairLossFn:
        def loss(s: PairScores) -> PairLoss:
            return orpo_loss(s.chosen_logps, s.rejected_logps, s.chosen_tokens,
                             s.rejected_tokens, weight=options.odds_ratio_weight)  # fmt: skip

        return loss


class PreferenceLoop:
    """The training loop of one preference run (see the module docstring)."""

    def __init__(
        self,
        config: RunConfig,
        options: PreferenceTrainerOptions,
        run: RunDirectory,
        pairs: list[TokenizedPair],
        policy: Transformer,
        base: Any,
        context: RunContext,
        started_at: float,
        pair_loss: PairLossFn,
        *,
        uses_reference: bool,
        title: str,
    ) -> None:
        self.config, self.options, self.run, self.pairs = config, options, run, pairs
        self.policy, self.base, self.context, self.started_at = policy, base, context, started_at
        self.pair_loss, self.uses_reference, self.title = pair_loss, uses_reference, title
        longest = max(len(p.prompt) + max(len(p.chosen), len(p.rejected)) for p in pairs)
        max_seq_len = config.training.max_seq_len
        self.length = min(max_seq_len, _round_up(longest - 1, LENGTH_MULTIPLE))
        completion = max(max(len(p.chosen), len(p.rejected)) for p in pairs)
        self.completion_length = _round_up(completion, LENGTH_MULTIPLE)

    def total_steps(self) -> int:
        training = self.config.training
        if training.epochs is None:
            return training.steps
        per_step = training.batch_size * training.grad_accum
        return max(1, math.ceil(training.epochs * len(self.pairs) / per_step))

    def train(self) -> tuple[TrainResult, Any]:
        config, options, training = self.config, self.options, self.config.training
        progress = self.context.progress
        steps = self.total_steps()
        stream = IndexStream(len(self.pairs), training.batch_size * training.grad_accum,
                             config.run.seed)  # fmt: skip
        tx, schedule = build_optimizer(training, steps)
        mesh = self.base.mesh
        state = TrainState.create(self.policy, config, mesh, tx)
        # The reference, taken before any resume: the adapters at zero leave the base model
        # (LoRA); a full fine-tune keeps a copy of the starting weights.
        reference = None
        if self.uses_reference:
            copy = jnp.zeros_like if training.lora.enabled else jnp.copy
            reference = jax.tree.map(copy, state.params)
        checkpointer = Checkpointer(self.run.checkpoints_dir, keep=training.keep_checkpoints,
                                    async_save=options.async_checkpoints)  # fmt: skip
        position = resume(checkpointer, state, stream, self.run, progress, seed=config.run.seed)
        trainable = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(position.params))
        progress(
            f"[train] {self.title}: {steps} steps of {training.grad_accum} x "
            f"{training.batch_size} pairs ({len(self.pairs)} pairs, rows of {self.length} "
            f"tokens), {trainable:,} trainable parameters, mesh {dict(mesh.shape)}"
        )
        chunk_tokens = options.loss_chunk_tokens
        # Rows laid end to end only on one device: a sharded batch keeps its rows apart.
        merge_rows = mesh.size == 1
        step_fn = jax.jit(
            make_preference_step(state.graphdef, state.template, tx, model_logits_fn,
                                 self.pair_loss, chunk_tokens=chunk_tokens, merge_rows=merge_rows),
            donate_argnums=(0, 1),
            out_shardings=(jax.tree.map(lambda x: x.sharding, state.params),
                           jax.tree.map(lambda x: x.sharding, state.opt_state), None),
        )  # fmt: skip
        token_logps = make_logprobs_fn(state.graphdef, state.template, model_logits_fn,
                                       temperature=1.0, chunk_tokens=chunk_tokens,
                                       merge_rows=merge_rows)  # fmt: skip
        sequence_logps = jax.jit(
            lambda params, frozen, batch: jnp.sum(
                token_logps(params, frozen, batch) * batch["mask"], axis=1
            )
        )
        batch_sharding = mesh_lib.batch_sharding(mesh, leading_axes=1)
        pad_id = self.base.tokenizer.pad_id

        def take_step() -> StepEnd:
            began = time.monotonic()
            chosen = [self.pairs[i] for i in stream.next_batch()]
            rows = pair_rows(chosen, pad_id=pad_id, length=self.length,
                             completion_length=self.completion_length)  # fmt: skip
            accum = training.grad_accum
            batches = {k: mesh_lib.put_global(v.reshape(accum, -1, *v.shape[1:]), batch_sharding)
                       for k, v in rows.items()}  # fmt: skip
            if reference is None:
                ref = np.zeros((accum, 2 * training.batch_size), np.float32)
                batches["ref_logprobs"] = mesh_lib.put_global(ref, batch_sharding)
            else:
                batches["ref_logprobs"] = jnp.stack([
                    sequence_logps(reference, state.frozen, {k: v[i] for k, v in batches.items()})
                    for i in range(accum)
                ])  # fmt: skip
            position.params, position.opt_state, metrics = step_fn(
                position.params, position.opt_state, state.frozen, batches
            )
            values = {k: float(v) for k, v in jax.device_get(metrics).items()}
            return self._step_end(position, values, began, schedule, stream)

        step_eval = StepEvaluation.create(config, self.context, self.base, self.policy)
        reason = drive_steps(config, options, self.run, checkpointer, steps=steps,
                             position=position, started_at=self.started_at, progress=progress,
                             step_hook=self.context.hook.tunix_train_step_end,
                             take_step=take_step, step_eval=step_eval)  # fmt: skip
        done = outcome(config, state, position, stopped_early=bool(reason), reason=reason)
        return done.result, done.model

    @staticmethod
    def _step_end(
        position: Position,
        values: dict[str, float],
        began: float,
        schedule: optax.Schedule,
        stream: IndexStream,
    ) -> StepEnd:
        """Advance ``position`` past a step and say how it went; the metrics line gets
        the mean rewards, the margin, the preference accuracy and the mean
        log-probabilities of the step's pairs."""
        seconds = time.monotonic() - began
        step_tokens = int(values["tokens"])
        position.step += 1
        position.tokens += step_tokens
        position.train_seconds += seconds
        extra = {key: values[key] for key in ("chosen_reward", "rejected_reward", "accuracy",
                                               "chosen_logps", "rejected_logps")}  # fmt: skip
        extra["margin"] = values["chosen_reward"] - values["rejected_reward"]
        return StepEnd(
            step=position.step, loss=values["loss"], grad_norm=values["grad_norm"],
            learning_rate=float(schedule(position.step - 1)), step_tokens=step_tokens,
            seconds=seconds, tokens_seen=position.tokens, train_seconds=position.train_seconds,
            params=position.params, opt_state=position.opt_state, data=stream.state(),
            extra={k: v for k, v in extra.items() if math.isfinite(v)},
        )  # fmt: skip
