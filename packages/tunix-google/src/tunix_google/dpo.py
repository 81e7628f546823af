"""The ``google-tunix-dpo`` trainer: google-tunix's own ``DPOTrainer`` (its reference
log-probabilities, its DPO loss, its train step and checkpoint manager) on tunix's
preference pairs, inside a tunix run.

The pairs come from ``trainer.options.pairs`` and are rendered and tokenized as for the
``dpo`` trainer (docs/rl.md): the prompt with BOS, each reply with its
``<end_of_turn>``, a pair too long for ``training.max_seq_len`` dropped. They go to
DPOTrainer as its ``TrainingInput`` (prompts left-padded, replies right-padded, one
shape for the run). The reference is the model the run starts from: with LoRA the same
module without the adapters, otherwise a frozen copy. Each optimizer step, its metrics
line (with DPO's rewards, margin, accuracy and log-probabilities), checkpoints in
``checkpoints/``, ``--resume`` (the newest restored, the pairs it had read skipped),
budget, hook and the export are ``google-tunix-sft``'s.

``trainer.options``: the ``dpo`` trainer's ``pairs`` and ``beta`` and the ``jax``
trainer's that apply; the others name google-tunix's lack.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from tunix_core.config import RunConfig, structure
from tunix_core.data.record import ReasoningExample
from tunix_core.errors import ConfigError
from tunix_core.protocols import ModelBackend, RunContext, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_google.grpo import total_steps
from tunix_google.requirements import refuse_unsupported, require
from tunix_google.sft import (
    GOOGLE_BEHAVIOUR,
    UNSUPPORTED_OPTIONS,
    drive,
    export_module,
    google_tunix_version,
    resume_counters,
)
from tunix_jax.backend import JaxModel
from tunix_jax.dtypes import DTYPES
from tunix_jax.options import DpoTrainerOptions
from tunix_jax.rl.preference.data import PreferencePair, load_pairs
from tunix_jax.rl.preference.trainer import TokenizedPair, tokenize_pairs
from tunix_jax.training.data import IndexStream
from tunix_jax.training.optim import build_optimizer
from tunix_jax.training.shared import check_jax_training, load_base

NAME = "google-tunix-dpo"
# Prompt and reply lengths are rounded up to this multiple (one compiled shape per run).
LENGTH_MULTIPLE = 8
# DPOTrainer's aux outputs and the names the ``dpo`` trainer logs them under.
AUX_METRICS = {
    "rewards/chosen": "chosen_reward",
    "rewards/rejected": "rejected_reward",
    "rewards/margin": "margin",
    "rewards/accuracy": "accuracy",
    "log_probs/chosen": "chosen_logps",
    "log_probs/rejected": "rejected_logps",
}


def dpo_options(config: RunConfig) -> DpoTrainerOptions:
    """``trainer.options`` structured as the ``dpo`` trainer's, after refusing the ones
    google-tunix cannot honour (one line naming the field)."""
    refuse_unsupported(config.trainer.options, NAME, UNSUPPORTED_OPTIONS, GOOGLE_BEHAVIOUR)
    options: DpoTrainerOptions = structure(
        config.trainer.options, DpoTrainerOptions, source="config", root="trainer.options"
    )
    return options


def preference_pairs(config: RunConfig, options: DpoTrainerOptions) -> list[PreferencePair]:
    if options.pairs is None:
        raise ConfigError(
            f"trainer.options.pairs: the {NAME} trainer needs preference records: "
            "a JSONL file (or hf:PATH) of prompt/chosen/rejected"
        )
    return load_pairs(options.pairs, config.dataset.system_prompt)


def _round_up(value: int) -> int:
    return -(-value // LENGTH_MULTIPLE) * LENGTH_MULTIPLE


class PairBatches:
    """Micro-batches of ``batch_size`` pairs as DPOTrainer's ``TrainingInput``, in the
    seeded order of the ``dpo`` trainer's stream (``batch_size x grad_accum`` a step)."""

    def __init__(self, pairs: list[TokenizedPair], batch_size: int, grad_accum: int,
                 seed: int) -> None:  # fmt: skip
        self.pairs, self.batch_size = pairs, batch_size
        self.stream = IndexStream(len(pairs), batch_size * grad_accum, seed)
        self.pending: list[int] = []
        self.prompt_length = _round_up(max(len(p.prompt) for p in pairs))
        self.reply_length = _round_up(max(max(len(p.chosen), len(p.rejected)) for p in pairs))

    def next_input(self) -> tuple[Any, int]:
        """The next micro-batch and its reply tokens (both replies of every pair)."""
        from tunix.sft.dpo.dpo_trainer import TrainingInput

        if not self.pending:
            self.pending = list(self.stream.next_batch())
        batch = [self.pairs[i] for i in self.pending[: self.batch_size]]
        del self.pending[: self.batch_size]
        rows = len(batch)
        prompt_ids = np.zeros((rows, self.prompt_length), np.int32)
        prompt_mask = np.zeros((rows, self.prompt_length), bool)
        replies = {
            name: (np.zeros((rows, self.reply_length), np.int32),
                   np.zeros((rows, self.reply_length), bool))
            for name in ("chosen", "rejected")
        }  # fmt: skip
        for row, pair in enumerate(batch):
            prompt_ids[row, self.prompt_length - len(pair.prompt) :] = pair.prompt
            prompt_mask[row, self.prompt_length - len(pair.prompt) :] = True
            for name, ids in (("chosen", pair.chosen), ("rejected", pair.rejected)):
                replies[name][0][row, : len(ids)] = ids
                replies[name][1][row, : len(ids)] = True
        tokens = sum(len(p.chosen) + len(p.rejected) for p in batch)
        model_input = TrainingInput(
            prompt_ids=prompt_ids, prompt_mask=prompt_mask,
            chosen_ids=replies["chosen"][0], chosen_mask=replies["chosen"][1],
            rejected_ids=replies["rejected"][0], rejected_mask=replies["rejected"][1],
        )  # fmt: skip
        return model_input, tokens


def aux_extras(auxes: list[dict[str, Any]]) -> dict[str, float]:
    """The step's means of DPOTrainer's aux outputs under the ``dpo`` trainer's names."""
    extra = {}
    for key, name in AUX_METRICS.items():
        values = [float(aux[key]) for aux in auxes if key in aux]
        if values and all(np.isfinite(values)):
            extra[name] = float(np.mean(values))
    return extra


class GoogleTunixDpoTrainer:
    """The ``google-tunix-dpo`` trainer (see the module docstring). One instance drives
    one run; the time budget counts from its creation."""

    def __init__(self) -> None:
        self.created_at = time.time()

    def validate(self, config: RunConfig, *, context: RunContext) -> None:
        options = dpo_options(config)  # needs no google-tunix: its errors come first
        require(NAME)
        check_jax_training(config, options, rows=config.training.batch_size * 2)
        preference_pairs(config, options)  # bad records fail before the run writes anything

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
        options = dpo_options(config)
        pairs = preference_pairs(config, options)
        base = load_base(config, train_examples, backend, progress)
        tokenized = tokenize_pairs(pairs, base.tokenizer, config.training.max_seq_len, progress)
        training = config.training
        batches = PairBatches(tokenized, training.batch_size, training.grad_accum, config.run.seed)
        steps = total_steps(config, len(tokenized))
        trainer = self._dpo_trainer(config, options, run, base, batches, steps)
        counters = resume_counters(trainer, run, progress, batches=training.grad_accum,
                                   skip=lambda: batches.next_input()[1])  # fmt: skip
        lora = training.lora
        progress(
            f"[train] google-tunix {google_tunix_version()} DPOTrainer, beta {options.beta}, "
            f"{'LoRA rank ' + str(lora.rank) if lora.enabled else 'full fine-tune'}: "
            f"{steps} steps of {training.grad_accum} x {training.batch_size} pairs "
            f"({len(tokenized)} pairs)"
        )
        reason = drive(config, options, run, trainer, counters, steps,
                       next_input=batches.next_input, data=batches.stream.state,
                       started_at=self.created_at, progress=progress,
                       step_hook=context.hook.tunix_train_step_end, step_extras=aux_extras)  # fmt: skip
        return export_module(config, run, backend, base, trainer.model,
                             TrainResult(counters.step, bool(reason), reason), progress,
                             title=f"{config.model.preset} DPO loss (google-tunix)")  # fmt: skip

    @staticmethod
    def _dpo_trainer(
        config: RunConfig, options: DpoTrainerOptions, run: RunDirectory, base: JaxModel,
        batches: PairBatches, steps: int,
    ) -> Any:  # fmt: skip
        import orbax.checkpoint as ocp
        from flax import nnx
        from tunix.sft.dpo import dpo_trainer

        # optional: google-tunix and qwix (the extra google-tunix), checked by require()
        from tunix_google.modules import apply_lora, to_google_tunix

        training = config.training
        module = to_google_tunix(base.transformer, DTYPES[config.model.dtype])
        if training.lora.enabled:
            reference = module  # the adapters left out: the base model, no second copy
            module = apply_lora(module, options.lora_targets, rank=training.lora.rank,
                                alpha=training.lora.alpha, seed=config.run.seed,
                                batch=training.batch_size * 2,
                                length=batches.prompt_length + batches.reply_length)  # fmt: skip
        else:  # the policy's update donates its arrays: the reference keeps copies
            graphdef, state = nnx.split(module)
            reference = nnx.merge(graphdef, jax.tree.map(lambda x: x.copy(), state))
        tx, _ = build_optimizer(training, steps)
        run.checkpoints_dir.mkdir(parents=True, exist_ok=True)
        trainer_config = dpo_trainer.DPOTrainingConfig(
            eval_every_n_steps=steps + 1,  # tunix evaluates after training, not during
            max_steps=steps,
            gradient_accumulation_steps=training.grad_accum if training.grad_accum > 1 else None,
            checkpoint_root_directory=str(run.checkpoints_dir.absolute()),
            checkpointing_options=ocp.CheckpointManagerOptions(
                save_interval_steps=training.checkpoint_every,
                max_to_keep=training.keep_checkpoints,
            ),
            pbar_description=None,
            algorithm="dpo",
            beta=options.beta,
        )
        # Building it restores the newest checkpoint in checkpoint_root_directory.
        return dpo_trainer.DPOTrainer(module, reference, tx, trainer_config)
