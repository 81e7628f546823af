"""``eval.during_training``: every ``every`` optimizer steps, the model being trained
answers the first ``limit`` items of a split greedily, and the step's metrics get
``eval/<split>_accuracy`` and ``eval/<split>_format`` (``metrics.jsonl``, the loggers,
the plugins' ``tunix_train_step_end``, which is what ``tunix sweep`` prunes on).

The items are those the dataset stage saved for the split (the run's ``data/`` files), cut
to the first ``limit``: every evaluation of a run, every trial of a sweep and a resumed run
measure the same ones. The evaluation puts the parameters a step ended with into the
training model (LoRA adapters applied, not merged) and only reads them: the next step
starts from the same state as without it, and the trained model is the same.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import attrs
from flax import nnx

from tunix_core.config import EVAL_SPLIT, RunConfig
from tunix_core.data.record import ReasoningExample, read_jsonl
from tunix_core.errors import ConfigError
from tunix_core.evaluation import (
    during_training_metrics,
    during_training_names,
    measure_examples,
)
from tunix_core.protocols import Evaluator, RunContext
from tunix_jax.backend import JaxModel
from tunix_jax.models.gemma.transformer import Transformer
from tunix_jax.training.callbacks import StepEnd
from tunix_jax.training.loop import trainable_filter


@attrs.define
class StepEvaluation:
    """Called with each finished step; the metrics it adds to the step (none between
    evaluations)."""

    every: int
    split: str
    examples: Sequence[ReasoningExample]
    generator: JaxModel
    evaluators: Sequence[Evaluator]
    config: RunConfig
    context: RunContext

    @classmethod
    def create(cls, config: RunConfig, context: RunContext, base: JaxModel,
               model: Transformer) -> StepEvaluation | None:  # fmt: skip
        """The evaluation ``config`` asks for (None when ``eval.during_training.every`` is
        unset), generating with ``model``, the module the trainer trains (``base``: the
        backend's model it was built from, for its tokenizer and mesh)."""
        during = config.eval.during_training
        if during.every is None:
            return None
        run = context.run
        if run is None:
            raise ConfigError("eval.during_training: only a `tunix run` saves the items it reads")
        path = run.eval_data_path if during.split == EVAL_SPLIT else run.ood_data_path
        if not path.is_file():
            raise ConfigError(f"eval.during_training.split: the run saved no {during.split!r} "
                              f"items ({path} is missing)")  # fmt: skip
        examples = read_jsonl(path)[: during.limit]
        evaluators = [context.evaluators.load(name)() for name in config.eval.evaluators]
        generator = JaxModel(base.spec, model, base.tokenizer, base.mesh)
        return cls(during.every, during.split, examples, generator, evaluators, config, context)

    def __call__(self, event: StepEnd) -> dict[str, float]:
        if event.step % self.every:
            return {}
        began = time.monotonic()
        model = self.generator.transformer
        trainable = nnx.state(model, trainable_filter(self.config))
        nnx.replace_by_pure_dict(trainable, event.params)
        nnx.update(model, trainable)
        settings = self.config.eval
        summary = measure_examples(
            self.generator, self.examples, self.evaluators,
            system_prompt=self.config.dataset.system_prompt,
            max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size,
            label=f"step {event.step} {self.split}", context=self.context,
            decoding=settings.decoding,
        )  # fmt: skip
        metrics = during_training_metrics(self.split, summary)
        accuracy, form = (metrics[name] for name in during_training_names(self.split))
        self.context.progress(
            f"[train] step {event.step}: {self.split} accuracy {accuracy:.1%}, format "
            f"{form:.1%} over the first {len(self.examples)} item(s) "
            f"({time.monotonic() - began:.1f}s)"
        )
        return metrics
