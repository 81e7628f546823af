from pathlib import Path

import attrs
import pytest

from tunix_core.config import (
    RunConfig,
    apply_overrides,
    load_config,
    load_run_config,
    parse_duration,
    structure,
    structure_config,
    unstructure_config,
)
from tunix_core.errors import ConfigError
from tunix_core.protocols import ModelSpec


def problems(data) -> str:
    with pytest.raises(ConfigError) as info:
        structure_config(data)
    return str(info.value)


def test_empty_config_is_the_default_run():
    config = structure_config({})
    assert config == RunConfig()
    assert (config.trainer.name, config.dataset.name, config.model.preset) == (
        "jax",
        "dev-reasoning-v2",
        "gemma3-270m",
    )


def test_round_trip_through_plain_data():
    config = structure_config({"training": {"steps": 7, "lora": {"rank": 4}}})
    assert structure_config(unstructure_config(config)) == config


def test_failed_validator_names_path_and_rule():
    assert "training.learning_rate: must be > 0, got -1.0" in problems(
        {"training": {"learning_rate": -1.0}}
    )


def test_nested_validator_and_choice():
    message = problems({"training": {"lora": {"rank": 0}}, "model": {"dtype": "f16"}})
    assert "training.lora.rank: must be > 0, got 0" in message
    assert "model.dtype: must be one of 'float32', 'bfloat16', got 'f16'" in message


def test_eval_dtype_is_checked_and_picks_the_evaluated_parameters():
    message = problems({"eval": {"dtype": "float16"}})
    assert "eval.dtype: must be one of 'float32', 'bfloat16', got 'float16'" in message
    f32 = structure_config({"model": {"dtype": "float32"}})
    assert ModelSpec.for_evaluation(f32).dtype == "float32"  # unset: model.dtype
    bf16 = structure_config({"model": {"dtype": "float32"}, "eval": {"dtype": "bfloat16"}})
    assert ModelSpec.for_evaluation(bf16).dtype == "bfloat16"
    assert ModelSpec.for_evaluation(bf16, "float32").dtype == "float32"  # tunix eval --dtype wins


def test_unknown_key_names_its_path():
    assert "training.lr: unknown key" in problems({"training": {"lr": 1e-4}})
    assert "colour: unknown key" in problems({"colour": "blue"})


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("training.compute_dtype=bfloat16", "trainer.options.compute_dtype"),
        ("training.remat=block", "trainer.options.remat"),
        ("training.packing=false", "trainer.options.packing"),
        ("training.lora.targets=[q_einsum]", "trainer.options.lora_targets"),
        ("training.mesh_data=2", "model.options.mesh_data"),
        ("training.mesh_fsdp=1", "model.options.mesh_fsdp"),
    ],
)
def test_a_moved_field_names_its_new_place(old: str, new: str):
    field = old.partition("=")[0]
    with pytest.raises(ConfigError) as info:
        load_config(None, [old])
    assert str(info.value) == f"config: invalid configuration:\n  {field}: moved to {new}"


def test_moved_fields_in_a_file_are_all_reported_at_once(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  remat: block\n  mesh_data: 8\n  lora: {targets: [q_einsum]}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid configuration:")
    assert "training.remat: moved to trainer.options.remat" in message
    assert "training.mesh_data: moved to model.options.mesh_data" in message
    assert "training.lora.targets: moved to trainer.options.lora_targets" in message
    assert "unknown key" not in message


def test_model_backend_and_options():
    config = structure_config({"model": {"options": {"mesh_data": 2}}})
    assert (config.model.backend, config.model.options) == ("jax", {"mesh_data": 2})
    assert RunConfig().model.options == {}


def test_wrong_type_names_path_and_expected_type():
    message = problems({"training": {"steps": "many"}})
    assert "training.steps: expected int" in message
    assert "run: expected RunSection" in problems({"run": [1, 2]})


def test_missing_key_in_a_structured_options_class():
    @attrs.frozen
    class Options:
        path: str
        limit: int = 3

    with pytest.raises(ConfigError) as info:
        structure({"limit": 2}, Options, source="cfg.yaml", root="dataset.options")
    assert "dataset.options.path: required key is missing" in str(info.value)


def test_time_budget_is_a_duration():
    assert parse_duration("8h45m") == 31500
    assert parse_duration("90s") == 90
    assert parse_duration("1.5h") == 5400
    assert structure_config({"training": {"time_budget": "20m"}}).training.time_budget_seconds == 1200
    assert "training.time_budget: must be a duration" in problems(
        {"training": {"time_budget": "soon"}}
    )


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  steps: 10\n  lr: [1, 2\nmodel: {}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:4:")
    assert "YAML syntax error" in str(info.value)


def test_file_plus_overrides(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  steps: 10\n")
    config = load_config(path, ["training.steps=3", "model.weights=random", "eval.limit=5"])
    assert (config.training.steps, config.model.weights, config.eval.limit) == (3, "random", 5)


def test_unknown_key_in_a_file_names_the_file(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text("trainng:\n  steps: 10\n")
    with pytest.raises(ConfigError, match=rf"^{path}: invalid configuration:\n  trainng: unknown"):
        load_config(path)


def test_override_syntax():
    assert apply_overrides({"a": {"b": 1}}, ["a.c=[1, 2]"]) == {"a": {"b": 1, "c": [1, 2]}}
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        apply_overrides({}, ["training.steps"])
    with pytest.raises(ConfigError, match="'steps' is not a section"):
        apply_overrides({"steps": 3}, ["steps.x=1"])


def test_a_run_saved_before_fields_moved_still_loads():
    """The default run's evidence of 2026-11 (f32, 48 items) was saved with training.remat,
    training.mesh_data, ...; its config still resumes, with each value at its new place."""
    saved = Path(__file__).resolve().parent / "fixtures/run_config_before_fields_moved.yaml"
    with pytest.raises(ConfigError, match=r"training\.remat: moved to trainer\.options\.remat"):
        load_config(saved)
    config = load_run_config(saved)
    assert config.trainer.options["remat"] == "none"
    assert config.trainer.options["lora_targets"][0] == "q_einsum"
    assert config.model.options == {"mesh_data": None, "mesh_fsdp": None}
    assert config.training.steps == 44


def test_exponent_numbers_without_a_dot_are_numbers_in_files_and_overrides(tmp_path):
    # YAML 1.1 reads `3e-6` as a string; learning rates are written that way.
    path = tmp_path / "run.yaml"
    path.write_text("training:\n  learning_rate: 3e-6\n  weight_decay: 1E-2\n")
    config = load_config(path, ["training.grad_clip=5e-1"])
    assert config.training.learning_rate == 3e-6 and config.training.weight_decay == 0.01
    assert config.training.grad_clip == 0.5
    assert load_config(None, ["run.name=e5"]).run.name == "e5"
