"""The ``grpo`` trainer: Group Relative Policy Optimization of Gemma with reward plugins.

Each step draws ``training.batch_size x training.grad_accum`` prompts, samples
``num_generations`` completions of each with the project's sampler from the current
policy, scores them with the rewards of ``trainer.options.rewards`` (``tunix plugins``
lists them; DAPO's overlong punishment added when asked), turns the rewards into
group-relative advantages (``reward_normalization``), optionally drops the groups that
teach nothing and refills the batch (DAPO's dynamic sampling), and takes
``num_iterations`` optimizer steps on the clipped objective of ``loss_type`` with a KL
penalty to the reference model (:mod:`tunix_jax.rl.grpo.algorithm`). Each step also logs
the reward-hacking diagnostics of :mod:`tunix_core.hacking` over its completions. With LoRA the reference is the
base model without the adapters (the adapters' values set to zero), so no second copy of
the weights is held; a full fine-tune keeps a frozen copy.

The reference is the model the run starts from: ``model.weights``, or the model of the
run named by ``--init-from`` (SFT then GRPO), or the previous phase's in
``training.phases``. Checkpoints, exact resume, time budget, NaN guard, progress bar and
the plugins' step hook are the SFT trainer's. Sampling seeds are a function of
``run.seed`` and the step, so a resumed run draws the samples an uninterrupted one draws.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tunix_core.config import RunConfig
from tunix_core.data.parse import parse_completion
from tunix_core.data.record import ReasoningExample
from tunix_core.data.render import render_prompt
from tunix_core.errors import ConfigError, DataError
from tunix_core.evaluation import example_meta
from tunix_core.hacking import hacking_flags, hacking_rates, inflated_share
from tunix_core.protocols import ModelBackend, Reward, RunContext, TrainResult
from tunix_core.registry import UnknownNameError
from tunix_core.rewards import load_rewards, score_loaded
from tunix_core.rundir import RunDirectory
from tunix_jax import sharding as mesh_lib
from tunix_jax.models.gemma.sampler import LENGTH, Sampler
from tunix_jax.models.gemma.tokenizer import Tokenizer
from tunix_jax.options import GrpoTrainerOptions, grpo_options
from tunix_jax.rl.grpo.algorithm import (
    GRPO_BATCH_KEYS,
    Objective,
    advantages_of,
    build_rows,
    make_grpo_step,
    make_logprobs_fn,
    overlong_penalty,
    uninformative_groups,
)
from tunix_jax.training.callbacks import StepEnd
from tunix_jax.training.checkpoint import Checkpointer
from tunix_jax.training.data import IndexStream
from tunix_jax.training.loop import (
    Position,
    TrainState,
    drive_steps,
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


@attrs.frozen
class PromptItem:
    """One training item as GRPO uses it: the rendered prompt (text and tokens), the
    expected answer and the item's meta, for the rewards, and the question, for the
    reward-hacking diagnostics."""

    text: str
    ids: list[int]
    expected: str
    meta: dict[str, Any]
    question: str = ""


# The name the overlong punishment is logged and normalised under, as if it were a reward.
OVERLONG = "overlong"


def sample_seed(run_seed: int, step: int, refill: int = 0) -> int:
    """The sampling seed of step ``step`` (0-based) and its ``refill``-th extra round of
    dynamic sampling: a pure function, so the samples of a resumed run are those of an
    uninterrupted one."""
    return (run_seed * 1_000_003 + step + refill * 1_000_000_007) % (2**31 - 1)


class GrpoTrainer:
    """The ``grpo`` trainer (see the module docstring). The time budget counts from its
    creation; rewards come from the run host's registry (``context.rewards``), and after
    every step it calls the host's ``tunix_train_step_end`` (``context.hook``)."""

    def __init__(self) -> None:
        self.created_at = time.time()

    def validate(self, config: RunConfig, *, context: RunContext) -> None:
        options = grpo_options(config)
        check_jax_training(config, options, rows=config.training.batch_size * options.num_generations)
        if options.max_new_tokens >= config.training.max_seq_len:
            raise ConfigError(
                f"trainer.options.max_new_tokens: {options.max_new_tokens} leaves no room for "
                f"the prompt in training.max_seq_len={config.training.max_seq_len}"
            )
        if options.overlong_interval is not None:
            if options.overlong_interval >= options.overlong_limit:
                raise ConfigError(
                    f"trainer.options.overlong_interval: {options.overlong_interval} must be "
                    f"below overlong_max_tokens ({options.overlong_limit})"
                )
            if OVERLONG in options.rewards:
                raise ConfigError(f"trainer.options.rewards: {OVERLONG!r} is the name of the "
                                  "overlong punishment (trainer.options.overlong_interval)")  # fmt: skip
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
        progress = context.progress
        options = grpo_options(config)
        base = load_base(config, train_examples, backend, progress)
        prompts = prompt_items(config, options, train_examples, base.tokenizer, progress)
        policy = prepare_model(config, options, training_model(base.transformer, config, options))
        loop = GrpoLoop(config, options, run, prompts, policy, base, context, self.created_at)
        result, trained_model = loop.train()
        return export_trained(config, options, run, backend, base, trained_model, result,
                              title=f"{config.model.preset} GRPO", progress=progress)  # fmt: skip


def loaded_rewards(options: GrpoTrainerOptions, context: RunContext) -> dict[str, Reward]:
    """The rewards of ``trainer.options.rewards``, configured with ``reward_options``;
    a bad name, weight or option is a ConfigError naming its field."""
    try:
        return load_rewards(context, options.rewards, options.reward_options,
                            field="trainer.options.reward_options")  # fmt: skip
    except (UnknownNameError, ValueError) as exc:
        raise ConfigError(f"trainer.options.rewards: {exc}") from None


def prompt_items(
    config: RunConfig,
    options: GrpoTrainerOptions,
    examples: Sequence[ReasoningExample],
    tokenizer: Tokenizer,
    progress: Callable[[str], None],
) -> list[PromptItem]:
    """Every example's rendered prompt, tokenized; prompts that leave fewer than
    ``max_new_tokens`` of ``training.max_seq_len`` are dropped (and counted)."""
    limit = config.training.max_seq_len - options.max_new_tokens
    items, dropped = [], 0
    for example in examples:
        text = render_prompt(example.question, config.dataset.system_prompt)
        ids = tokenizer.encode(text, add_bos=True)
        if len(ids) > limit:
            dropped += 1
            continue
        meta: dict[str, Any] = {**example_meta(example), "id": example.id}
        items.append(PromptItem(text, ids, example.answer, meta, example.question))
    if dropped:
        message = (f"[train] {dropped} of {len(examples)} prompts dropped: longer than "
                   f"training.max_seq_len - trainer.options.max_new_tokens = {limit} tokens")  # fmt: skip
        log.warning(message)
        progress(message)
    if not items:
        raise DataError(
            f"every one of the {len(examples)} training prompts is longer than {limit} tokens "
            "(training.max_seq_len - trainer.options.max_new_tokens); raise training.max_seq_len"
        )
    return items


@attrs.define
class Samples:
    """One step's sampled completions (``num_generations`` per prompt, adjacent) and what
    the rewards made of them."""

    items: list[PromptItem]  # one per completion
    completion_ids: list[list[int]]  # with the stop token when the row stopped
    texts: list[str]
    truncated: list[bool]
    rewards: dict[str, list[float]]  # the overlong punishment too, when on
    total: list[float]
    # Per completion: False for a filler group of dynamic sampling (left out of the loss).
    informative: list[bool] = attrs.field(factory=list)

    def groups(self, group_size: int) -> int:
        return len(self.texts) // group_size

    def score_columns(self, per_reward: bool) -> np.ndarray:
        """[N, K]: what the advantages are computed from, the combined reward or (with
        ``per_reward``) each reward: dynamic sampling's test for equal rewards."""
        columns = list(self.rewards.values()) if per_reward else [self.total]
        return np.asarray(columns, np.float64).T


def join_groups(parts: Sequence[tuple[Samples, int]], group_size: int,
                informative: Sequence[bool]) -> Samples:  # fmt: skip
    """The samples of group ``g`` of each ``(samples, g)`` in ``parts``, in that order;
    ``informative[k]`` marks part ``k``'s completions."""
    picked = [
        (samples, index)
        for samples, g in parts
        for index in range(g * group_size, (g + 1) * group_size)
    ]
    names = list(parts[0][0].rewards) if parts else []
    return Samples(
        items=[s.items[i] for s, i in picked],
        completion_ids=[s.completion_ids[i] for s, i in picked],
        texts=[s.texts[i] for s, i in picked],
        truncated=[s.truncated[i] for s, i in picked],
        rewards={name: [s.rewards[name][i] for s, i in picked] for name in names},
        total=[s.total[i] for s, i in picked],
        informative=[flag for flag in informative for _ in range(group_size)],
    )


@attrs.frozen
class DrawStats:
    """What dynamic sampling did in one step (all 0 without it)."""

    refills: int = 0
    dropped_groups: int = 0
    filler_groups: int = 0


class GrpoLoop:
    """The training loop of one GRPO run (see the module docstring)."""

    def __init__(
        self,
        config: RunConfig,
        options: GrpoTrainerOptions,
        run: RunDirectory,
        prompts: list[PromptItem],
        policy: Any,
        base: Any,
        context: RunContext,
        started_at: float,
    ) -> None:
        self.config, self.options, self.run, self.prompts = config, options, run, prompts
        self.policy, self.base, self.context, self.started_at = policy, base, context, started_at
        self.progress = context.progress
        self.step_hook = context.hook.tunix_train_step_end
        # Loaded once: a reward may hold a model and a cache (the judge).
        self.rewards = loaded_rewards(options, context)
        self.weights = dict(options.rewards)
        if options.overlong_interval is not None:
            self.weights[OVERLONG] = 1.0
        # The previous step's mean completion length, for the length-inflation check
        # (unknown at the first step of a run or of a resumed one).
        self.previous_length: float | None = None

    def total_steps(self) -> int:
        training = self.config.training
        if training.epochs is None:
            return training.steps
        per_step = training.batch_size * training.grad_accum
        return max(1, math.ceil(training.epochs * len(self.prompts) / per_step))

    def train(self) -> tuple[TrainResult, Any]:
        config, options, training = self.config, self.options, self.config.training
        steps = self.total_steps()
        stream = IndexStream(len(self.prompts), training.batch_size * training.grad_accum,
                             config.run.seed)  # fmt: skip
        # The schedule counts optimizer updates: num_iterations per step.
        tx, schedule = build_optimizer(training, steps * options.num_iterations)
        mesh = self.base.mesh
        state = TrainState.create(self.policy, config, mesh, tx)
        # The reference: the adapters at zero leave the base model (LoRA); a full
        # fine-tune keeps a copy of the starting weights. Taken before any resume.
        if options.beta == 0:
            reference = None
        elif training.lora.enabled:
            reference = jax.tree.map(jnp.zeros_like, state.params)
        else:
            reference = jax.tree.map(jnp.copy, state.params)
        checkpointer = Checkpointer(self.run.checkpoints_dir, keep=training.keep_checkpoints,
                                    async_save=options.async_checkpoints)  # fmt: skip
        position = resume(checkpointer, state, stream, self.run, self.progress,
                          seed=config.run.seed)  # fmt: skip
        self._describe(steps, position, mesh)
        sampler = Sampler(self.policy, self.base.tokenizer, mesh)
        compiled = self._compile(state, tx)
        batch_sharding = mesh_lib.batch_sharding(mesh, leading_axes=1)

        def take_step() -> StepEnd:
            return self._step(position, state, reference, stream, sampler, compiled, schedule,
                              batch_sharding)  # fmt: skip

        step_eval = StepEvaluation.create(config, self.context, self.base, self.policy)
        reason = drive_steps(config, options, self.run, checkpointer, steps=steps,
                             position=position, started_at=self.started_at,
                             progress=self.progress, step_hook=self.step_hook,
                             take_step=take_step, step_eval=step_eval)  # fmt: skip
        done = outcome(config, state, position, stopped_early=bool(reason), reason=reason)
        return done.result, done.model

    def _compile(self, state: TrainState, tx: Any) -> dict[str, Callable[..., Any]]:
        options = self.options
        objective = Objective(options.epsilon_low, options.epsilon_high, options.beta,
                              options.loss_type, options.max_new_tokens)  # fmt: skip
        temperature, chunk_tokens = options.temperature, options.loss_chunk_tokens
        # Rows laid end to end only on one device: a sharded batch keeps its rows apart.
        merge_rows = self.base.mesh.size == 1
        step = make_grpo_step(state.graphdef, state.template, tx, model_logits_fn, objective,
                              temperature=temperature, chunk_tokens=chunk_tokens,
                              on_policy=options.num_iterations == 1, merge_rows=merge_rows)  # fmt: skip
        param_shardings = jax.tree.map(lambda x: x.sharding, state.params)
        opt_shardings = jax.tree.map(lambda x: x.sharding, state.opt_state)
        logprobs = make_logprobs_fn(state.graphdef, state.template, model_logits_fn,
                                    temperature=temperature, chunk_tokens=chunk_tokens,
                                    merge_rows=merge_rows)  # fmt: skip
        return {
            "step": jax.jit(step, donate_argnums=(0, 1),
                            out_shardings=(param_shardings, opt_shardings, None)),
            "logprobs": jax.jit(logprobs),
        }  # fmt: skip

    def _describe(self, steps: int, position: Position, mesh: Any) -> None:
        training, options = self.config.training, self.options
        trainable = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(position.params))
        self.progress(
            f"[train] GRPO: {steps} steps of {training.grad_accum} x {training.batch_size} "
            f"prompts x {options.num_generations} samples of up to {options.max_new_tokens} "
            f"tokens ({len(self.prompts)} prompts), {options.num_iterations} update(s) per "
            f"step, loss {options.loss_type}, {options.reward_normalization} reward "
            f"normalisation, beta {options.beta}, rewards {options.rewards}, {trainable:,} "
            f"trainable parameters, mesh {dict(mesh.shape)}"
        )

    def sample(self, position: Position, indices: list[int], sampler: Sampler,
               refill: int = 0) -> Samples:  # fmt: skip
        """Draw ``num_generations`` completions of each prompt from the current policy
        (which holds ``position.params``) and score them."""
        options = self.options
        group = options.num_generations
        items = [self.prompts[i] for i in indices for _ in range(group)]
        generated = sampler.generate_ids(
            [item.ids for item in items],
            max_new_tokens=options.max_new_tokens,
            temperature=options.temperature,
            top_p=options.top_p,
            seed=sample_seed(self.config.run.seed, position.step, refill),
        )
        tokenizer = sampler.tokenizer
        texts = [tokenizer.decode(ids) for ids in generated.tokens]
        completion_ids = [
            [*ids, stop] if stop is not None else list(ids)
            for ids, stop in zip(generated.tokens, generated.stop_tokens, strict=True)
        ]
        scores = score_loaded(
            self.context, self.rewards, options.rewards, [item.text for item in items], texts,
            [item.expected for item in items], [item.meta for item in items],
        )  # fmt: skip
        by_reward, total = dict(scores.by_reward), list(scores.total)
        if options.overlong_interval is not None:
            penalty = overlong_penalty([len(ids) for ids in generated.tokens],
                                       options.overlong_limit, options.overlong_interval)  # fmt: skip
            by_reward[OVERLONG] = [float(p) for p in penalty]
            total = [t + float(p) for t, p in zip(total, penalty, strict=True)]
        return Samples(
            items, completion_ids, texts, [r == LENGTH for r in generated.stop_reasons],
            by_reward, total, [True] * len(texts),
        )  # fmt: skip

    def draw(
        self, position: Position, stream: IndexStream, sampler: Sampler
    ) -> tuple[Samples, DrawStats]:
        """One step's samples. With ``dynamic_sampling``, groups whose rewards are all
        equal are dropped and further batches of prompts sampled (up to ``max_refills``)
        until the step has its number of groups; groups still missing then are filled
        with dropped ones, left out of the loss."""
        options = self.options
        group = options.num_generations
        samples = self.sample(position, stream.next_batch(), sampler)
        if not options.dynamic_sampling:
            return samples, DrawStats()
        wanted = samples.groups(group)
        kept: list[tuple[Samples, int]] = []
        dropped: list[tuple[Samples, int]] = []
        refills = 0
        per_reward = options.reward_normalization == "per_reward_then_sum"
        while True:
            flat = uninformative_groups(samples.score_columns(per_reward), group)
            for g, uninformative in enumerate(flat):
                (dropped if uninformative else kept).append((samples, g))
            if len(kept) >= wanted or refills == options.max_refills:
                break
            refills += 1
            samples = self.sample(position, stream.next_batch(), sampler, refill=refills)
        kept = kept[:wanted]
        fillers = dropped[: wanted - len(kept)]
        joined = join_groups([*kept, *fillers], group,
                             [True] * len(kept) + [False] * len(fillers))  # fmt: skip
        return joined, DrawStats(refills, len(dropped), len(fillers))

    def _step(
        self,
        position: Position,
        state: TrainState,
        reference: Any,
        stream: Any,
        sampler: Sampler,
        compiled: dict[str, Callable[..., Any]],
        schedule: Any,
        batch_sharding: Any,
    ) -> StepEnd:
        began = time.monotonic()
        options, training = self.options, self.config.training
        nnx.update(self.policy, _trainable_state(state, position.params))
        samples, draw_stats = self.draw(position, stream, sampler)
        generated_at = time.monotonic()

        counted = [
            not (options.mask_truncated and truncated) and not math.isnan(total) and informative
            for truncated, total, informative in zip(samples.truncated, samples.total,
                                                     samples.informative, strict=True)
        ]  # fmt: skip
        advantages = advantages_of(
            np.asarray(samples.total, np.float64),
            {name: np.asarray(v, np.float64) for name, v in samples.rewards.items()},
            self.weights, options.num_generations,
            normalization=options.reward_normalization, scale=options.scales_rewards,
        )  # fmt: skip
        prompt_ids = [item.ids for item in samples.items]
        length, completion_length = row_shape(prompt_ids, samples.completion_ids,
                                              training.max_seq_len, options.max_new_tokens)  # fmt: skip
        rows = build_rows(prompt_ids, samples.completion_ids, counted,
                          pad_id=sampler.tokenizer.pad_id, length=length,
                          completion_length=completion_length)  # fmt: skip
        rows["advantages"] = advantages
        accum = training.grad_accum
        stacked = {k: v.reshape(accum, -1, *v.shape[1:]) for k, v in rows.items()}
        host_keys = [k for k in GRPO_BATCH_KEYS if k in stacked]
        batches = {k: mesh_lib.put_global(stacked[k], batch_sharding) for k in host_keys}
        completion_shape = stacked["targets"].shape
        zeros = np.zeros(completion_shape, np.float32)
        batches["ref_logprobs"] = self._logprobs(compiled, reference, state, batches, zeros,
                                                 batch_sharding)  # fmt: skip
        batches["old_logprobs"] = (
            self._logprobs(compiled, position.params, state, batches, zeros, batch_sharding)
            if options.num_iterations > 1 else mesh_lib.put_global(zeros, batch_sharding)
        )  # fmt: skip
        iterations = []
        for _ in range(options.num_iterations):
            position.params, position.opt_state, step_metrics = compiled["step"](
                position.params, position.opt_state, state.frozen, batches
            )
            iterations.append(jax.device_get(step_metrics))
        values = {key: float(np.mean([it[key] for it in iterations]))
                  for key in ("loss", "ratio", "clip_fraction")}  # fmt: skip
        # The KL of the policy that drew the samples: before this step's first update.
        values["kl"] = float(iterations[0]["kl"])
        values["grad_norm"] = float(iterations[-1]["grad_norm"])
        seconds = time.monotonic() - began
        step_tokens = int(iterations[0]["tokens"])
        position.step += 1
        position.tokens += step_tokens
        position.train_seconds += seconds
        extra = step_extras(samples, counted, values, generate_seconds=generated_at - began,
                            update_seconds=time.monotonic() - generated_at)  # fmt: skip
        extra.update(diagnostics(samples, self.previous_length))
        if options.dynamic_sampling:
            extra.update({f"dynamic_sampling/{k}": float(v)
                          for k, v in attrs.asdict(draw_stats).items()})  # fmt: skip
        self.previous_length = extra["completion_tokens"]
        return StepEnd(
            step=position.step, loss=values["loss"], grad_norm=values["grad_norm"],
            learning_rate=float(schedule(position.step * options.num_iterations - 1)),
            step_tokens=step_tokens, seconds=seconds, tokens_seen=position.tokens,
            train_seconds=position.train_seconds, params=position.params,
            opt_state=position.opt_state, data=stream.state(), extra=extra,
        )  # fmt: skip

    def _logprobs(
        self,
        compiled: dict[str, Callable[..., Any]],
        params: Any,
        state: TrainState,
        batches: dict[str, Any],
        zeros: np.ndarray,
        batch_sharding: Any,
    ) -> Any:
        """[grad_accum, rows, C] log-probabilities under ``params`` (zeros without them)."""
        if params is None:
            return mesh_lib.put_global(zeros, batch_sharding)
        per_micro = [
            compiled["logprobs"](params, state.frozen, {k: v[i] for k, v in batches.items()})
            for i in range(zeros.shape[0])
        ]
        return jnp.stack(per_micro)


# Row lengths are rounded up to these multiples: a few compiled shapes per run, and no
# step pays for the longest prompt and completion the configuration allows.
LENGTH_MULTIPLE = 64
COMPLETION_MULTIPLE = 32


def row_shape(
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    max_seq_len: int,
    max_new_tokens: int,
) -> tuple[int, int]:
    """(input length, completion length) of a step's rows: what its longest row needs,
    rounded up to :data:`LENGTH_MULTIPLE` / :data:`COMPLETION_MULTIPLE` and capped at
    ``max_seq_len`` / ``max_new_tokens + 1`` (a completion's stop token included)."""
    # A row's last token is only a target, so prompt + completion - 1 inputs suffice.
    needed = max(len(p) + len(c) for p, c in zip(prompts, completions, strict=True)) - 1
    length = min(max_seq_len, -(-needed // LENGTH_MULTIPLE) * LENGTH_MULTIPLE)
    longest = max(1, max(len(c) for c in completions))
    completion = min(max_new_tokens + 1, -(-longest // COMPLETION_MULTIPLE) * COMPLETION_MULTIPLE)
    return length, completion


def _trainable_state(state: TrainState, params: Any) -> Any:
    """The trainable variables' state holding ``params`` (to update the sampling model)."""
    trainable = jax.tree.map(lambda x: x, state.template)
    nnx.replace_by_pure_dict(trainable, params)
    return trainable


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and std of the values that are not NaN; ``None`` when there are none."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return None, None
    mean = sum(kept) / len(kept)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in kept) / len(kept))


def step_extras(
    samples: Samples,
    counted: list[bool],
    values: dict[str, float],
    *,
    generate_seconds: float,
    update_seconds: float,
) -> dict[str, float]:
    """The GRPO part of a step's ``metrics.jsonl`` line: the combined reward and each
    reward's mean, std and count of NaN scores; the KL to the reference of the policy
    that drew the samples; the clip fraction and mean policy ratio over the step's
    updates; the completion length; the share of completions in the exact format, truncated and counted in the
    loss; and the time spent sampling (with scoring) and updating."""
    extra: dict[str, float | None] = {}
    extra["reward"], extra["reward_std"] = _mean_std(samples.total)
    extra["reward_nan"] = sum(math.isnan(v) for v in samples.total)
    for name, scores in samples.rewards.items():
        extra[f"reward/{name}"], extra[f"reward/{name}_std"] = _mean_std(scores)
        # NaN scores (a judge's parse failure, say) are left out of the group statistics.
        extra[f"reward/{name}_nan"] = sum(math.isnan(v) for v in scores)
    n = len(samples.texts)
    extra["kl"] = float(values["kl"])
    extra["clip_fraction"] = float(values["clip_fraction"])
    extra["ratio"] = float(values["ratio"])
    extra["completion_tokens"] = sum(len(ids) for ids in samples.completion_ids) / n
    extra["format_rate"] = sum(parse_completion(t).format_exact for t in samples.texts) / n
    extra["truncated_rate"] = sum(samples.truncated) / n
    extra["counted_rate"] = sum(counted) / n
    extra["generate_seconds"] = round(generate_seconds, 3)
    extra["update_seconds"] = round(update_seconds, 3)
    return {k: v for k, v in extra.items() if v is not None and math.isfinite(v)}


def diagnostics(samples: Samples, previous_length: float | None) -> dict[str, float]:
    """The reward-hacking rates of :mod:`tunix_core.hacking` over the step's completions
    (``hacking/<check>``), and ``hacking/length_inflation``: the share of completions
    longer than 1.5 x the previous step's mean length (from the second step on)."""
    flags = [hacking_flags(item.question or item.text, text)
             for item, text in zip(samples.items, samples.texts, strict=True)]  # fmt: skip
    extra = {f"hacking/{check}": rate for check, rate in hacking_rates(flags).items()}
    if previous_length is not None:
        lengths = [len(ids) for ids in samples.completion_ids]
        extra["hacking/length_inflation"] = inflated_share(lengths, previous_length)
    return extra
