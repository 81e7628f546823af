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


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-gemma2"])
def test_tunix_gemma_restores_our_checkpoint(tmp_path, tiny_model, preset):
    pytest.importorskip("tunix.models.gemma3.model")
    from tunix_jax.export import google_tunix_module
    from tunix_jax.model.loading import save_orbax

    ours, _ = tiny_model(preset)
    save_orbax(ours, tmp_path / "params")
    tunix_model = restore_into(google_tunix_module(ours.config, jnp.float32), tmp_path / "params")
    expected, _ = ours(TOKENS, POSITIONS)
    got, _ = tunix_model(TOKENS, POSITIONS, None, CAUSAL)
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), atol=1e-4)
