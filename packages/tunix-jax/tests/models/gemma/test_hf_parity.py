"""Logits equal Hugging Face transformers (PyTorch, CPU) on the same tiny random weights."""

import numpy as np
import pytest

from tunix_jax.models.gemma.config import get_config

pytestmark = pytest.mark.heavy

TOKENS = [[2, 17, 300, 42, 9, 77, 123, 64, 31, 250, 8, 99, 400, 5, 6, 7, 301, 302, 11, 12]]


def hf_config(preset: str):
    import transformers

    cfg = get_config(preset)
    layer_types = [
        "sliding_attention" if cfg.attention_kind(i) == "local" else "full_attention"
        for i in range(cfg.num_layers)
    ]
    common = {
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.embed_dim,
        "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "head_dim": cfg.head_dim,
        "sliding_window": cfg.sliding_window,
        "query_pre_attn_scalar": int(cfg.query_pre_attn_scalar),
        "max_position_embeddings": cfg.max_seq_len,
        "layer_types": layer_types,
        "final_logit_softcapping": cfg.final_logit_softcap,
        "attn_logit_softcapping": cfg.attn_logit_softcap,
    }
    if cfg.family == "gemma3":
        rope = {
            "sliding_attention": {"rope_type": "default", "rope_theta": cfg.local_rope_base},
            "full_attention": {"rope_type": "default", "rope_theta": cfg.global_rope_base},
        }
        return transformers.Gemma3TextConfig(
            rope_parameters=rope, **common
        ), transformers.Gemma3ForCausalLM
    rope = {"rope_type": "default", "rope_theta": cfg.global_rope_base}
    return transformers.Gemma2Config(rope_parameters=rope, **common), transformers.Gemma2ForCausalLM


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_logits_match_transformers(preset, tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tunix_jax.weights.loading import load_model

    config, model_class = hf_config(preset)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    hf_model = model_class(config).eval()
    with torch.no_grad():
        for name, param in hf_model.named_parameters():
            # Random norms too: zero-initialised norms would hide a 1 + w mistake.
            param.normal_(0.0, 0.3 if "norm" in name else 0.1)
    hf_model.save_pretrained(tmp_path, safe_serialization=True)
    with torch.no_grad():
        expected = hf_model(torch.tensor(TOKENS)).logits.numpy()

    model, _ = load_model(preset, f"safetensors:{tmp_path}")
    tokens = np.asarray(TOKENS, np.int32)
    got, _ = model(tokens, np.arange(tokens.shape[1])[None])
    assert len(TOKENS[0]) > get_config(preset).sliding_window
    np.testing.assert_allclose(np.asarray(got), expected, atol=1e-4, rtol=0)
