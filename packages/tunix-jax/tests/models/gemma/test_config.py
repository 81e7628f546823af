import pytest

from tunix_jax.models.gemma.config import PRESETS, ModelConfig, get_config


def test_presets_and_aliases():
    for name in ("gemma3-270m", "gemma3-1b", "gemma2-2b", "tiny-gemma3", "tiny-gemma2"):
        assert name in PRESETS
    assert get_config("gemma3-1b-it").num_layers == get_config("gemma3-1b").num_layers == 26
    assert get_config("gemma3-270m-pt").name == "gemma3-270m-pt"
    assert get_config("gemma2-2b").family == "gemma2"
    assert get_config("gemma3-270m").family == "gemma3"


def test_unknown_preset_lists_known_ones():
    with pytest.raises(ValueError, match=r"known presets:.*gemma3-270m") as info:
        get_config("gemma3-207m")
    assert "Did you mean 'gemma3-270m'" in str(info.value)


def test_param_counts_match_published_sizes():
    assert abs(get_config("gemma3-270m").num_params() - 268_098_176) < 1e3
    assert abs(get_config("gemma3-1b").num_params() / 1e9 - 1.0) < 0.01
    assert abs(get_config("gemma2-2b").num_params() / 1e9 - 2.61) < 0.01


def test_attention_pattern_and_round_trip():
    cfg = get_config("gemma3-1b")
    kinds = [cfg.attention_kind(i) for i in range(12)]
    assert kinds == (["local"] * 5 + ["global"]) * 2
    g2 = get_config("gemma2-2b")
    assert [g2.attention_kind(i) for i in range(4)] == ["local", "global", "local", "global"]
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
