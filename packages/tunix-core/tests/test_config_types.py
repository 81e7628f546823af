"""A value of the wrong type is refused with the field's path, never coerced."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
import yaml

from tunix_core.config import (
    RunConfig,
    load_config,
    load_run_config,
    structure,
    structure_config,
    unstructure_config,
)
from tunix_core.errors import ConfigError


def problem(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as info:
        structure_config(data)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"training": {"steps": 2.7}}, "training.steps: expected int (a whole number), got 2.7"),
        ({"training": {"steps": True}}, "training.steps: expected int (a whole number), got True"),
        ({"training": {"steps": "3"}}, "training.steps: expected int (a whole number), got '3'"),
        ({"eval": {"limit": 4.0}}, "eval.limit: expected int (a whole number), got 4.0"),
        ({"training": {"learning_rate": float("inf")}},
         "training.learning_rate: expected a finite number, got inf"),
        ({"training": {"epochs": float("nan")}}, "training.epochs: expected a finite number, got nan"),
        ({"training": {"learning_rate": "1e-4"}},
         "training.learning_rate: expected a number, got '1e-4'"),
        ({"training": {"learning_rate": False}},
         "training.learning_rate: expected a number, got False"),
        ({"training": {"lora": {"enabled": "false"}}},
         "training.lora.enabled: expected true or false, got 'false'"),
        ({"eval": {"baseline": 0}}, "eval.baseline: expected true or false, got 0"),
        ({"eval": {"evaluators": "format"}},
         "eval.evaluators: expected a list, got the string 'format'"),
        ({"eval": {"evaluators": ["format", ["x"]]}},
         "eval.evaluators[1]: expected text, got ['x']"),
        ({"run": {"name": ["a", "b"]}}, "run.name: expected text, got ['a', 'b']"),
        ({"run": {"name": True}}, "run.name: expected text, got True"),
        ({"dataset": {"options": "x"}}, "dataset.options: expected a mapping, got 'x'"),
    ],
)  # fmt: skip
def test_a_wrong_type_is_refused_naming_the_field(data: dict[str, object], expected: str):
    assert problem(data).splitlines()[1:] == [f"  {expected}"]


def test_every_problem_is_listed_at_once():
    message = problem({"training": {"steps": 2.7, "batch_size": True}, "eval": {"baseline": 1}})
    assert message.splitlines() == [
        "config: invalid configuration:",
        "  training.steps: expected int (a whole number), got 2.7",
        "  training.batch_size: expected int (a whole number), got True",
        "  eval.baseline: expected true or false, got 1",
    ]


def test_right_types_still_structure():
    config = structure_config({
        "run": {"name": 2026, "seed": 3},  # a number is fine as a name
        "training": {"steps": 5, "learning_rate": 1, "epochs": None, "lora": {"enabled": False}},
        "eval": {"evaluators": ("format",), "limit": None},
        "dataset": {"options": {"anything": [1, "x"]}},
    })  # fmt: skip
    assert config.run.name == "2026"
    assert (config.training.steps, config.training.learning_rate) == (5, 1.0)
    assert isinstance(config.training.learning_rate, float)
    assert config.training.lora.enabled is False
    assert config.eval.evaluators == ("format",) and config.eval.limit is None


def test_yaml_file_and_overrides_are_both_strict(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  learning_rate: .inf\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}: invalid configuration:\n  training.learning_rate: expected a finite number, got inf"
    )
    with pytest.raises(ConfigError, match=r"training\.steps: expected int \(a whole number\), got 2\.7"):
        load_config(None, ["training.steps=2.7"])
    with pytest.raises(ConfigError, match=r"eval\.evaluators: expected a list, got the string 'format'"):
        load_config(None, ["eval.evaluators=format"])
    assert load_config(None, ["eval.evaluators=[format]"]).eval.evaluators == ("format",)


def test_a_saved_run_config_round_trips(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(unstructure_config(RunConfig())))
    assert load_run_config(path) == RunConfig()


def test_plugin_options_are_as_strict():
    @attrs.frozen
    class Options:
        packing: bool = True
        chunk: int = 8
        share: float = 0.5
        names: tuple[str, ...] = ()

    with pytest.raises(ConfigError) as info:
        structure(
            {"packing": "false", "chunk": 2.5, "share": float("-inf"), "names": "ab"},
            Options,
            source="config",
            root="trainer.options",
        )
    assert str(info.value).splitlines()[1:] == [
        "  trainer.options.packing: expected true or false, got 'false'",
        "  trainer.options.chunk: expected int (a whole number), got 2.5",
        "  trainer.options.share: expected a finite number, got -inf",
        "  trainer.options.names: expected a list, got the string 'ab'",
    ]
