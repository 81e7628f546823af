"""``prune_on``: a sweep prunes on the step metric it names (the training loss by default,
or an evaluation taken during training), read in its own direction."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tunix_core.errors import ConfigError
from tunix_sweep import study as studies
from tunix_sweep.spec import Sweep, load_sweep

SPACE = {"training.learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True}}
EVALUATING = {"eval": {"during_training": {"every": 2, "split": "ood", "limit": 8}}}


def sweep_of(tmp_path: Path, base: Mapping[str, object] | None = None, **fields: object) -> Sweep:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"space": SPACE, "base": dict(base or {}), **fields}))
    return load_sweep(path)


def error_of(tmp_path: Path, base: Mapping[str, object] | None = None, **fields: object) -> str:
    with pytest.raises(ConfigError) as caught:
        sweep_of(tmp_path, base, **fields)
    message = str(caught.value)
    assert "\n" not in message, message  # one line
    return message


# Four steps of two trials: the first has the higher loss and the better eval accuracy.
# Accuracy is measured every 2 steps, as eval.during_training.every: 2 does.
STEPS = {
    "good": [{"loss": 5.0}, {"loss": 5.0, "eval/ood_accuracy": 0.5}, {"loss": 5.0},
             {"loss": 5.0, "eval/ood_accuracy": 0.5}],
    "bad": [{"loss": 0.1}, {"loss": 0.1, "eval/ood_accuracy": 0.1}, {"loss": 0.1},
            {"loss": 0.1, "eval/ood_accuracy": 0.1}],
}  # fmt: skip


def run_trials(sweep: Sweep) -> list[optuna.trial.FrozenTrial]:
    """The two trials through a study with the sweep's pruner, reporting each step as the
    local backend does; a trial the pruner stops is told pruned."""
    study = optuna.create_study(direction=studies.direction(sweep.spec),
                                pruner=studies.make_pruner(sweep.spec))  # fmt: skip
    for name in ("good", "bad"):
        trial = study.ask(studies.distributions(sweep.spec))
        pruned = any(studies.report_step(trial, sweep.spec, step, metrics)
                     for step, metrics in enumerate(STEPS[name], 1))  # fmt: skip
        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, 0.5 if name == "good" else 0.1)
    return study.trials


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_a_trial_is_pruned_on_the_eval_metric_not_on_its_lower_loss(tmp_path: Path, direction: str):
    sweep = sweep_of(tmp_path, EVALUATING, prune_on="eval/ood_accuracy", direction=direction,
                     pruner_startup_trials=1, pruner_warmup_steps=0)  # fmt: skip
    assert sweep.spec.prune_mode == "maximize"  # inferred for an eval metric
    good, bad = run_trials(sweep)
    assert good.state == TrialState.COMPLETE and bad.state == TrialState.PRUNED
    sign = 1 if direction == "maximize" else -1  # the study reads values in its direction
    # Only the evaluated steps are reported, with their accuracy, not the loss.
    assert good.intermediate_values == {2: sign * 0.5, 4: sign * 0.5}
    assert bad.intermediate_values == {2: sign * 0.1}  # stopped at its first evaluation


def test_on_the_default_training_loss_the_same_trial_is_not_pruned(tmp_path: Path):
    sweep = sweep_of(tmp_path, EVALUATING, pruner_startup_trials=1, pruner_warmup_steps=0)
    assert (sweep.spec.prune_on, sweep.spec.prune_mode) == ("loss", "minimize")
    good, bad = run_trials(sweep)
    assert good.state == bad.state == TrialState.COMPLETE
    assert bad.intermediate_values == {1: -0.1, 2: -0.1, 3: -0.1, 4: -0.1}


def test_an_explicit_prune_direction_wins(tmp_path: Path):
    sweep = sweep_of(tmp_path, EVALUATING, prune_on="eval/ood_accuracy",
                     prune_direction="minimize", pruner_startup_trials=1, pruner_warmup_steps=0)  # fmt: skip
    good, bad = run_trials(sweep)  # a higher accuracy now counts as worse
    assert bad.state == TrialState.COMPLETE and good.intermediate_values == {2: -0.5, 4: -0.5}


@pytest.mark.parametrize(("base", "fields", "expected"), [
    ({}, {"prune_on": "eval/ood_accuracy"},
     "prune_on: 'eval/ood_accuracy' is never measured: the base config evaluates nothing "
     "during training; set its eval.during_training.every"),
    ({"eval": {"during_training": {"every": 2, "split": "eval"}}}, {"prune_on": "eval/ood_accuracy"},
     "prune_on: 'eval/ood_accuracy' is not measured; the base config's eval.during_training "
     "gives eval/eval_accuracy and eval/eval_format"),
    (EVALUATING, {"prune_on": "eval/ood_acc"}, "prune_on: 'eval/ood_acc' is not measured"),
])  # fmt: skip
def test_a_prune_on_the_runs_do_not_measure_is_one_line_naming_the_field(
    tmp_path: Path, base: dict[str, object], fields: dict[str, object], expected: str
):
    message = error_of(tmp_path, base, **fields)
    assert message.startswith(f"{tmp_path / 'sweep.yaml'}: ") and expected in message, message


@pytest.mark.parametrize(("fields", "expected"), [
    ({"prune_on": " "}, "prune_on: must name a step metric"),
    ({"prune_direction": "up"}, "prune_direction: must be one of 'maximize', 'minimize'"),
])  # fmt: skip
def test_a_bad_prune_field_is_refused_as_the_sweep_files_other_fields(
    tmp_path: Path, fields: dict[str, object], expected: str
):
    with pytest.raises(ConfigError, match=rf"invalid configuration:\n  {expected}"):
        sweep_of(tmp_path, EVALUATING, **fields)


def test_a_sweep_folder_started_before_prune_on_existed_still_matches_its_file(tmp_path: Path):
    """sweep.json leaves prune_on out at its default (pruning on the loss), as it was saved
    before the field existed; a sweep that sets it records it, and is another search."""
    plain = sweep_of(tmp_path, EVALUATING).definition()
    assert "prune_on" not in plain and "prune_direction" not in plain
    evaluating = sweep_of(tmp_path, EVALUATING, prune_on="eval/ood_accuracy").definition()
    assert (evaluating["prune_on"], evaluating["prune_direction"]) == ("eval/ood_accuracy", None)
