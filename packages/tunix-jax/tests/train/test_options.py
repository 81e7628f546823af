import pytest

from tunix_core.config import structure_config
from tunix_core.errors import ConfigError
from tunix_jax.train.options import parse_deadline, trainer_options


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
