"""The sweep file: what it accepts, and one line naming the field for what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunix_core.config import structure_config
from tunix_core.errors import ConfigError
from tunix_sweep.spec import MAX_SEED, load_sweep, objective_value, run_objective
from tunix_sweep.trial import TrialFailed

SPACE = {
    "training.learning_rate": {"type": "float", "low": 1.0e-5, "high": 1.0e-2, "log": True},
    "training.lora.rank": {"type": "int", "low": 2, "high": 8},
}


def write(tmp_path: Path, **fields: object) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"space": SPACE, **fields}))
    return path


def error_of(path: Path, *overrides: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_sweep(path, overrides)
    message = str(caught.value)
    assert "\n" not in message, message  # one line
    return message


def test_a_sweep_file_reads_with_defaults_and_a_base_path(tmp_path: Path):
    (tmp_path / "base.yaml").write_text("training: {steps: 7}\n")
    sweep = load_sweep(write(tmp_path, base="base.yaml", trials=3), ["eval.limit=2"])
    assert sweep.name == "sweep"  # the file's stem
    assert sweep.spec.trials == 3 and sweep.spec.objective == "primary_score"
    assert sweep.spec.direction == "maximize" and sweep.spec.pruner == "median"
    assert sweep.base == {"training": {"steps": 7}, "eval": {"limit": 2}}


def test_set_overrides_reach_every_trial_and_parameters_win(tmp_path: Path):
    path = write(tmp_path, base={"training": {"steps": 5, "learning_rate": 0.5}})
    sweep = load_sweep(path, ["training.batch_size=2"], trials=9)
    assert sweep.spec.trials == 9  # --trials replaces the file's
    config = structure_config(sweep.trial_config({"training.learning_rate": 1e-05,
                                                  "training.lora.rank": 4}))  # fmt: skip
    assert config.training.batch_size == 2 and config.training.steps == 5
    assert config.training.learning_rate == 1e-05  # a float, not YAML's text "1e-05"
    assert config.training.lora.rank == 4


def test_a_number_after_a_list_names_its_item_so_a_mixture_s_weights_can_be_searched(
    tmp_path: Path,
):
    mix = [{"name": "dev-reasoning-v2"}, {"name": "gsm-symbolic", "weight": 1.0}]
    path = tmp_path / "sweep.yaml"
    space = {"dataset.mix.1.weight": {"type": "float", "low": 0.1, "high": 1.0}}
    path.write_text(yaml.safe_dump({"space": space, "base": {"dataset": {"mix": mix}}}))
    sweep = load_sweep(path)
    config = structure_config(sweep.trial_config({"dataset.mix.1.weight": 0.25}))
    assert [(part.name, part.weight) for part in config.dataset.mix] == [
        ("dev-reasoning-v2", 1.0), ("gsm-symbolic", 0.25)]  # fmt: skip
    assert sweep.base["dataset"]["mix"][1]["weight"] == 1.0  # each trial sets a copy
    space = {"dataset.mix.2.weight": {"type": "float", "low": 0.1, "high": 1.0}}
    path.write_text(yaml.safe_dump({"space": space, "base": {"dataset": {"mix": mix}}}))
    assert error_of(path).endswith("space.dataset.mix.2.weight: '2' is not one of the 2 items "
                                   "of the base config's list")  # fmt: skip
    space = {"dataset.mix.1.weight": {"type": "float", "low": 0.0, "high": 1.0}}
    path.write_text(yaml.safe_dump({"space": space, "base": {"dataset": {"mix": mix}}}))
    assert error_of(path).endswith("space.dataset.mix.1.weight: 0.0 is not valid there: "
                                   "dataset.mix[1].weight: must be > 0, got 0.0")


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"training.learnin_rate": {"type": "float", "low": 0.1, "high": 0.2}},
         "space.training.learnin_rate: 0.1 is not valid there: unknown key (not a field of "
         "TrainingSection)"),
        ({"training.schedule": {"type": "categorical", "choices": []}},
         "space.training.schedule: choices: must list at least one value, got none"),
        ({"training.learning_rate": {"type": "float", "low": 0.2, "high": 0.1}},
         "space.training.learning_rate: low 0.2 is above high 0.1"),
        ({"training.lora.rank": {"type": "int", "low": 2.5, "high": 8}},
         "space.training.lora.rank: an int parameter needs whole low, high and step"),
        ({"training.learning_rate": {"type": "float", "low": 0.0, "high": 0.1, "log": True}},
         "space.training.learning_rate: log: a log scale needs low > 0, got 0.0"),
        ({"training.learning_rate": {"type": "float", "low": -1.0, "high": 0.1}},
         "space.training.learning_rate: -1.0 is not valid there: must be > 0, got -1.0"),
        ({"training.schedule": {"type": "categorical", "choices": ["cosine", "sawtooth"]}},
         "space.training.schedule: 'sawtooth' is not valid there: must be one of"),
        ({"training.steps.deeper": {"type": "int", "low": 1, "high": 2}},
         "space.training.steps.deeper: 1 is not valid there: training.steps: expected int"),
        ({"training.steps": {"type": "int", "low": 1, "high": 2, "choices": [1]}},
         "space.training.steps: a int parameter takes low and high, not choices"),
        # Optuna would keep only low, silently
        ({"training.lora.rank": {"type": "int", "low": 2, "high": 8, "step": 10}},
         "space.training.lora.rank: step: 10.0 is larger than the range 2.0 to 8.0, which would "
         "keep only low"),
        ({"training.learning_rate": {"type": "float", "low": 0.1, "high": 0.2, "step": 0.5}},
         "space.training.learning_rate: step: 0.5 is larger than the range 0.1 to 0.2"),
    ],
)  # fmt: skip
def test_a_bad_space_is_one_line_naming_the_field(tmp_path: Path, space: dict[str, object], expected: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"space": space}))
    message = error_of(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_an_objective_not_in_the_summary_is_refused_before_any_trial(tmp_path: Path):
    message = error_of(write(tmp_path, objective="accuracy"))
    assert "objective: 'accuracy' is not in eval_summary.json" in message


def test_an_objective_missing_from_a_trials_summary_names_the_field(tmp_path: Path):
    summary = {"primary_score": 0.5, "scorecard": {"overall": {"format_compliance": 1.0}}}
    where = tmp_path / "eval_summary.json"
    assert objective_value(summary, "scorecard.overall.format_compliance", where) == 1.0
    with pytest.raises(ConfigError, match=r"^objective: 'scorecard.overall.nope' is not in .*eval_summary.json$"):
        objective_value(summary, "scorecard.overall.nope", where)
    with pytest.raises(ConfigError, match=r"objective: 'scorecard' in .* is not a number"):
        objective_value(summary, "scorecard", where)


def test_a_null_objective_fails_the_trial_but_a_missing_one_stops_the_sweep(tmp_path: Path):
    where = tmp_path / "eval_summary.json"
    # A rate over correct answers is null when nothing was correct: that run has no value.
    where.write_text('{"evaluators": {"trace": {"answer_in_reasoning_rate": null}}}')
    with pytest.raises(TrialFailed, match=r"'evaluators.trace.answer_in_reasoning_rate' in .* is null"):
        run_objective(where, "evaluators.trace.answer_in_reasoning_rate")
    where.write_text('{"primary_score": NaN}')
    with pytest.raises(TrialFailed, match="is nan, not a finite number"):
        run_objective(where, "primary_score")
    where.write_text('{"primary_score": 0.25')  # a torn summary: this trial failed
    with pytest.raises(TrialFailed, match=r"eval_summary.json: cannot read the run's summary"):
        run_objective(where, "primary_score")
    with pytest.raises(TrialFailed, match="cannot read the run's summary"):
        run_objective(tmp_path / "missing.json", "primary_score")
    where.write_text('{"primary_score": 0.25}')
    assert run_objective(where, "primary_score") == 0.25
    with pytest.raises(ConfigError, match="is not in"):  # the sweep file asks for a metric
        run_objective(where, "evaluators.nope.rate")  # no run has: the sweep stops


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 2**64])
def test_a_seed_numpy_cannot_take_is_refused_up_front(tmp_path: Path, seed: int):
    with pytest.raises(ConfigError, match=rf"sweep.yaml: invalid configuration:\n  seed: must be "
                                          rf"between 0 and {MAX_SEED}, got {seed}$"):  # fmt: skip
        load_sweep(write(tmp_path, seed=seed))


def test_an_empty_space_and_unknown_keys_name_their_field(tmp_path: Path):
    path = tmp_path / "sweep.yaml"
    path.write_text("space: {}\n")
    assert "space: must name at least one config field" in error_of(path)
    path.write_text(yaml.safe_dump({"space": SPACE, "pruner": "hyperband"}))
    with pytest.raises(ConfigError, match="pruner: must be one of 'none', 'median', got 'hyperband'"):
        load_sweep(path)
    path.write_text(yaml.safe_dump({"space": SPACE, "trails": 3}))
    with pytest.raises(ConfigError, match=r"trails: unknown key \(not a field of SweepSpec\)"):
        load_sweep(path)


def test_a_bad_base_config_names_the_base(tmp_path: Path):
    # The run config's own multi-line error, under the sweep file's base.
    with pytest.raises(ConfigError, match=r"sweep.yaml: base: invalid configuration:\n  "
                                          r"training.steps: must be > 0, got 0$"):  # fmt: skip
        load_sweep(write(tmp_path, base={"training": {"steps": 0}}))
