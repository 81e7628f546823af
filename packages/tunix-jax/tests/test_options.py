import pytest

from tunix_core.config import structure_config
from tunix_core.errors import ConfigError
from tunix_jax.options import (
    DEFAULT_LORA_TARGETS,
    JaxModelOptions,
    model_options,
    parse_deadline,
    trainer_options,
)


def test_defaults_and_values():
    options = trainer_options(structure_config({}))
    assert options.reserve_fraction == 0.15 and options.deadline_seconds is None
    custom = trainer_options(
        structure_config(
            {
                "trainer": {
                    "options": {
                        "reserve_fraction": 0.3,
                        "deadline": "2026-11-25T23:00:00Z",
                        "loss_chunk_tokens": 128,
                    }
                }
            }
        )
    )
    assert custom.reserve_fraction == 0.3 and custom.loss_chunk_tokens == 128
    assert custom.deadline_seconds == parse_deadline("1795647600")


def test_unknown_option_names_the_path():
    with pytest.raises(ConfigError, match=r"trainer\.options\.warmup: unknown key"):
        trainer_options(structure_config({"trainer": {"options": {"warmup": 3}}}))


def test_naive_deadline_means_utc():
    assert parse_deadline("2026-11-25T23:00:00") == parse_deadline("2026-11-25T23:00:00+00:00")


def test_the_fields_that_moved_out_of_training_keep_their_defaults_and_rules():
    options = trainer_options(structure_config({}))
    assert (options.compute_dtype, options.remat, options.packing) == ("float32", "none", True)
    assert options.lora_targets == DEFAULT_LORA_TARGETS
    assert DEFAULT_LORA_TARGETS == (
        "q_einsum", "kv_einsum", "attn_vec_einsum", "gate_proj", "up_proj", "down_proj",
    )  # fmt: skip
    custom = trainer_options(structure_config({"trainer": {"options": {
        "compute_dtype": "bfloat16", "remat": "dots", "packing": False,
        "lora_targets": ["q_einsum"],
    }}}))  # fmt: skip
    assert (custom.compute_dtype, custom.remat, custom.packing) == ("bfloat16", "dots", False)
    assert custom.lora_targets == ("q_einsum",)
    for field, value, rule in [
        ("remat", "all", "must be one of 'none', 'block', 'dots', got 'all'"),
        ("compute_dtype", "f16", "must be one of 'float32', 'bfloat16', got 'f16'"),
    ]:
        with pytest.raises(ConfigError) as info:
            trainer_options(structure_config({"trainer": {"options": {field: value}}}))
        assert f"trainer.options.{field}: {rule}" in str(info.value)


def test_model_options_are_the_mesh_and_name_their_path():
    assert model_options({}) == JaxModelOptions(mesh_data=None, mesh_fsdp=None)
    assert model_options(structure_config({}).model.options) == JaxModelOptions()
    assert model_options({"mesh_data": 2, "mesh_fsdp": 4}) == JaxModelOptions(2, 4)
    with pytest.raises(ConfigError, match=r"model\.options\.mesh_fsdp: must be > 0, got 0"):
        model_options({"mesh_fsdp": 0})
    with pytest.raises(ConfigError, match=r"model\.options\.mesh: unknown key"):
        model_options({"mesh": 2})
    assert JaxModelOptions().matmul_dtype == "auto"
    assert model_options({"matmul_dtype": "float32"}).matmul_dtype == "float32"
    assert model_options({"matmul_dtype": "bfloat16"}).matmul_dtype == "bfloat16"
    with pytest.raises(ConfigError, match=r"model\.options\.matmul_dtype: must be one of"):
        model_options({"matmul_dtype": "float16"})


def test_trainer_options_refuse_a_wrong_type_instead_of_coercing_it():
    for options, expected in [
        ({"packing": "false"}, "trainer.options.packing: expected true or false, got 'false'"),
        ({"loss_chunk_tokens": 256.5}, "trainer.options.loss_chunk_tokens: expected int"),
        ({"reserve_fraction": float("nan")}, "trainer.options.reserve_fraction: expected a finite"),
        ({"lora_targets": "q_einsum"}, "trainer.options.lora_targets: expected a list, got the"),
    ]:
        with pytest.raises(ConfigError) as info:
            trainer_options(structure_config({"trainer": {"options": options}}))
        assert expected in str(info.value)
    with pytest.raises(ConfigError, match=r"model\.options\.mesh_data: expected int"):
        model_options({"mesh_data": True})
