"""Checkpoints written by `save_orbax` load into google-tunix's Gemma classes unchanged.

Runs in the nox session `compat`, which installs google-tunix==0.1.7 in its own venv.
"""

import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.compat

TOKENS = np.array([[2, 40, 41, 300, 7, 8, 99, 120, 5, 6, 260, 31, 17, 18]], np.int32)
POSITIONS = np.arange(TOKENS.shape[1])[None]
CAUSAL = np.tril(np.ones((1, TOKENS.shape[1], TOKENS.shape[1]), bool))


def restore_into(tunix_module, directory):
    """Restore our Orbax checkpoint with the tunix module's own parameter tree as target."""
    import jax
    import orbax.checkpoint as ocp
    from flax import nnx

    target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
        nnx.to_pure_dict(nnx.state(tunix_module, nnx.Param)),
    )
    restored = ocp.StandardCheckpointer().restore(directory, target)
    nnx.update(tunix_module, restored)
    return tunix_module


def test_tunix_gemma3_restores_our_checkpoint(tmp_path, tiny_model):
    gemma3 = pytest.importorskip("tunix.models.gemma3.model")
    from flax import nnx

    from tunix_jax.model.loading import save_orbax

    ours, _ = tiny_model("tiny-gemma3")
    save_orbax(ours, tmp_path / "params")
    cfg = ours.config
    tunix_config = gemma3.ModelConfig(
        num_layers=cfg.num_layers,
        num_embed=cfg.vocab_size,
        embed_dim=cfg.embed_dim,
        hidden_dim=cfg.hidden_dim,
        num_heads=cfg.num_heads,
        head_dim=cfg.head_dim,
        num_kv_heads=cfg.num_kv_heads,
        sliding_window_size=cfg.sliding_window,
        local_base_frequency=int(cfg.local_rope_base),
        global_base_frequency=int(cfg.global_rope_base),
        param_dtype=jnp.float32,
    )
    tunix_model = nnx.eval_shape(lambda: gemma3.Gemma3(tunix_config, rngs=nnx.Rngs(0)))
    tunix_model = restore_into(tunix_model, tmp_path / "params")
    expected, _ = ours(TOKENS, POSITIONS)
    got, _ = tunix_model(TOKENS, POSITIONS, None, CAUSAL)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4)


def test_tunix_gemma2_restores_our_checkpoint(tmp_path, tiny_model):
    gemma = pytest.importorskip("tunix.models.gemma.model")
    from flax import nnx

    from tunix_jax.model.loading import save_orbax

    ours, _ = tiny_model("tiny-gemma2")
    save_orbax(ours, tmp_path / "params")
    cfg = ours.config
    kinds = {"local": gemma.AttentionType.LOCAL_SLIDING, "global": gemma.AttentionType.GLOBAL}
    tunix_config = gemma.ModelConfig(
        num_layers=cfg.num_layers,
        num_embed=cfg.vocab_size,
        embed_dim=cfg.embed_dim,
        hidden_dim=cfg.hidden_dim,
        num_heads=cfg.num_heads,
        head_dim=cfg.head_dim,
        num_kv_heads=cfg.num_kv_heads,
        final_logit_softcap=cfg.final_logit_softcap,
        use_post_attn_norm=True,
        use_post_ffw_norm=True,
        attention_types=[kinds[cfg.attention_kind(i)] for i in range(cfg.num_layers)],
        attn_logits_soft_cap=cfg.attn_logit_softcap,
        sliding_window_size=cfg.sliding_window,
    )
    tunix_model = nnx.eval_shape(lambda: gemma.Gemma(tunix_config, rngs=nnx.Rngs(0)))
    tunix_model = restore_into(tunix_model, tmp_path / "params")
    expected, _ = ours(TOKENS, POSITIONS)
    got, _ = tunix_model(TOKENS, POSITIONS, None, CAUSAL)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4)
