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

from tunix_core.config import RunConfig
from tunix_core.data.record import ReasoningExample
from tunix_core.data.render import render_example
from tunix_core.errors import DataError
from tunix_core.protocols import ModelBackend, RunContext, TrainResult
from tunix_core.rundir import RunDirectory
from tunix_jax.backend import JaxModel
from tunix_jax.options import trainer_options
from tunix_jax.training.data import TokenizedExample, tokenize_pairs
from tunix_jax.training.loop import prepare_model, run_training, training_model
from tunix_jax.training.shared import check_jax_training, export_trained, load_base
from tunix_jax.training.step_eval import StepEvaluation

log = logging.getLogger("tunix.train")


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
        progress = context.progress
        options = trainer_options(config)
        base = load_base(config, train_examples, backend, progress)
        examples = self._tokenize(config, train_examples, base, progress)
        model = prepare_model(config, options, training_model(base.transformer, config, options))
        outcome = run_training(
            config,
            run,
            examples,
            model,
            options=options,
            mesh=base.mesh,
            started_at=self.created_at,
            progress=progress,
            step_hook=context.hook.tunix_train_step_end,
            step_eval=StepEvaluation.create(config, context, base, model),
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
