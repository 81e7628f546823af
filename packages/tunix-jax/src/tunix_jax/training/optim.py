"""Optimizer and learning-rate schedule from ``training.*``.

The schedule warms up linearly from 0 to ``learning_rate`` over ``warmup_steps`` and then
decays (``cosine`` or ``linear``) to 10 % of it at ``total_steps``, or stays
(``constant``). Gradients are clipped to a global norm of ``grad_clip`` first.
"""

from __future__ import annotations

import optax

from tunix_core.config import TrainingSection

FINAL_LR_FRACTION = 0.1


def learning_rate_schedule(training: TrainingSection, total_steps: int) -> optax.Schedule:
    peak = training.learning_rate
    warmup = min(training.warmup_steps, max(total_steps - 1, 0))
    decay_steps = max(total_steps - warmup, 1)
    end = peak * FINAL_LR_FRACTION
    if training.schedule == "cosine":
        after = optax.cosine_decay_schedule(peak, decay_steps, alpha=FINAL_LR_FRACTION)
    elif training.schedule == "linear":
        after = optax.linear_schedule(peak, end, decay_steps)
    else:
        after = optax.constant_schedule(peak)
    if warmup == 0:
        return after
    # optax counts from 0; step 0 of warm-up already gets a non-zero rate.
    ramp = optax.linear_schedule(peak / (warmup + 1), peak, warmup)
    return optax.join_schedules([ramp, after], [warmup])


def build_optimizer(
    training: TrainingSection, total_steps: int
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    schedule = learning_rate_schedule(training, total_steps)
    if training.optimizer == "adamw":
        update = optax.adamw(schedule, b1=0.9, b2=0.999, weight_decay=training.weight_decay)
    else:
        update = optax.adafactor(schedule, weight_decay_rate=training.weight_decay or None)
    parts = [update]
    if training.grad_clip is not None:
        parts.insert(0, optax.clip_by_global_norm(training.grad_clip))
    return optax.chain(*parts), schedule
