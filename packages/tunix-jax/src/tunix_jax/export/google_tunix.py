"""Interop with Google's google-tunix (import name ``tunix``): its Gemma ``ModelConfig`` of
a preset, loading an export's upstream-layout checkpoint with its own loaders, and the
lines of Python that do so (recorded in every export's ``model_config.json``)."""

from __future__ import annotations

import os
from typing import Any

from flax import nnx

from tunix_jax.models.gemma.config import ModelConfig, base_preset

# google-tunix's stock config of each preset that has one: the Gemma 3 `ModelConfig`
# factory, or the Gemma 2 `Gemma.from_params` version (same architecture for -it and -pt).
GOOGLE_TUNIX_STOCK = {
    "gemma3-270m": "gemma3_270m",
    "gemma3-1b": "gemma3_1b_it",
    "gemma2-2b": "2-2b",
}


class GoogleTunixUnsupportedError(ValueError):
    """An architecture google-tunix's Gemma modules cannot express."""


def google_tunix_available() -> bool:
    """Whether Google's ``google-tunix`` distribution (import name ``tunix``) is installed."""
    import importlib.util

    return importlib.util.find_spec("tunix") is not None


def _query_scaling(config: ModelConfig) -> str:
    if config.query_pre_attn_scalar == config.head_dim:
        return "BY_ONE_OVER_SQRT_HEAD_DIM"
    if config.query_pre_attn_scalar == config.embed_dim // config.num_heads:
        return "BY_ONE_OVER_SQRT_EMBED_DIM_DIV_NUM_HEADS"
    raise GoogleTunixUnsupportedError(
        f"google-tunix cannot scale queries by {config.query_pre_attn_scalar}**-0.5"
    )


def google_tunix_config(config: ModelConfig) -> Any:
    """google-tunix's ``ModelConfig`` (Gemma 3 or Gemma 2) of ``config``; raises
    GoogleTunixUnsupportedError for numerics its modules fix differently (the Gemma 3
    attention pattern, Gemma 2's query scaling and RoPE, the norm epsilon)."""
    if config.rms_norm_eps != 1e-6:
        raise GoogleTunixUnsupportedError("google-tunix's RMSNorm has epsilon 1e-6")
    query_scaling = _query_scaling(config)
    if config.family == "gemma3":
        from tunix.models.gemma3 import model as gemma3_lib

        pattern = tuple(
            "local" if kind == gemma3_lib.AttentionType.LOCAL_SLIDING else "global"
            for kind in gemma3_lib.GEMMA3_ATTENTION_PATTERN
        )
        if config.attention_pattern != pattern:
            raise GoogleTunixUnsupportedError(
                f"google-tunix's Gemma 3 has the attention pattern {pattern}"
            )
        if config.attn_logit_softcap is not None or config.final_logit_softcap is not None:
            raise GoogleTunixUnsupportedError("google-tunix's Gemma 3 has no logit soft-caps")
        return gemma3_lib.ModelConfig(
            num_layers=config.num_layers,
            num_embed=config.checkpoint_vocab_size,
            embed_dim=config.embed_dim,
            hidden_dim=config.hidden_dim,
            num_heads=config.num_heads,
            head_dim=config.head_dim,
            num_kv_heads=config.num_kv_heads,
            sliding_window_size=config.sliding_window,
            local_base_frequency=int(config.local_rope_base),
            global_base_frequency=int(config.global_rope_base),
            local_scale_factor=config.local_rope_scale,
            global_scale_factor=config.global_rope_scale,
            query_pre_attn_norm=gemma3_lib.QueryPreAttentionNormalisation[query_scaling],
        )
    from tunix.models.gemma import model as gemma_lib

    if query_scaling != "BY_ONE_OVER_SQRT_HEAD_DIM":
        raise GoogleTunixUnsupportedError("google-tunix's Gemma scales queries by head_dim**-0.5")
    ropes = (config.local_rope_base, config.global_rope_base, config.local_rope_scale,
             config.global_rope_scale)  # fmt: skip
    if ropes != (10_000.0, 10_000.0, 1.0, 1.0) or config.use_qk_norm:
        raise GoogleTunixUnsupportedError(
            "google-tunix's Gemma has RoPE base 10,000 unscaled and no query/key norms"
        )
    types = {
        "local": gemma_lib.AttentionType.LOCAL_SLIDING,
        "global": gemma_lib.AttentionType.GLOBAL,
    }
    return gemma_lib.ModelConfig(
        num_layers=config.num_layers,
        num_embed=config.checkpoint_vocab_size,
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        num_kv_heads=config.num_kv_heads,
        final_logit_softcap=config.final_logit_softcap,
        use_post_attn_norm=True,
        use_post_ffw_norm=True,
        attention_types=tuple(types[config.attention_kind(i)] for i in range(config.num_layers)),
        attn_logits_soft_cap=config.attn_logit_softcap,
        sliding_window_size=config.sliding_window,
    )


def load_with_google_tunix(
    checkpoint: str | os.PathLike[str], config: ModelConfig, dtype: Any
) -> tuple[Any, str]:
    """``(module, how)``: an upstream-layout checkpoint loaded by google-tunix's own code.

    Gemma 3: ``gemma3.params.create_model_from_checkpoint`` with the preset's stock
    ``ModelConfig`` (or :func:`google_tunix_config` for presets without one), parameters
    cast to ``dtype``. Gemma 2: ``Gemma.from_params(load_and_format_params(path), version)``
    for a stock preset; otherwise the function from_params calls,
    ``module_from_linen_variables``, with from_params' own key and value mappings and
    :func:`google_tunix_config`. Gemma 2 keeps the stored dtype.
    """
    path = os.path.abspath(checkpoint)  # Orbax refuses relative paths
    stock = GOOGLE_TUNIX_STOCK.get(base_preset(config.name))
    if config.family == "gemma3":
        from tunix.models.gemma3 import model as gemma3_lib
        from tunix.models.gemma3 import params as gemma3_params

        if stock:
            tunix_config, how = getattr(gemma3_lib.ModelConfig, stock)(), f"ModelConfig.{stock}()"
        else:
            tunix_config, how = google_tunix_config(config), "its ModelConfig of this preset"
        module = gemma3_params.create_model_from_checkpoint(path, tunix_config, dtype=dtype)
        return module, f"google-tunix gemma3.params.create_model_from_checkpoint, {how}"

    from tunix.models.gemma import model as gemma_lib
    from tunix.models.gemma import params as gemma_params

    variables = gemma_params.load_and_format_params(path)
    if stock:
        module = gemma_lib.Gemma.from_params(variables, version=stock)
        return module, f"google-tunix Gemma.from_params(load_and_format_params), version {stock!r}"
    tunix_config = google_tunix_config(config)
    module = gemma_lib.module_from_linen_variables(
        module_factory=lambda: gemma_lib.Gemma(tunix_config, rngs=nnx.Rngs(params=0)),
        variables=variables["transformer"],
        map_key_fn=gemma_lib._map_linen_var_names,
        assign_val_fn=gemma_lib._assign_linen_params_to_nnx_state,
    )
    return module, (
        "google-tunix module_from_linen_variables(load_and_format_params), "
        "its ModelConfig of this preset"
    )


def google_tunix_recipe(config: ModelConfig, dtype: str) -> dict[str, Any]:
    """The lines of Python that load ``model/params`` with google-tunix, as
    :func:`load_with_google_tunix` does (the README shows them)."""
    path = 'os.path.abspath("model/params")'
    stock = GOOGLE_TUNIX_STOCK.get(base_preset(config.name))
    if stock and config.family == "gemma3":
        code = [
            "import os, jax.numpy as jnp",
            "from tunix.models.gemma3 import model, params",
            f"gemma = params.create_model_from_checkpoint({path}, "
            f"model.ModelConfig.{stock}(), dtype=jnp.{dtype})",
        ]
    elif stock:
        code = [
            "import os",
            "from tunix.models.gemma import model, params",
            f"gemma = model.Gemma.from_params(params.load_and_format_params({path}), "
            f"version={stock!r})",
        ]
    else:  # a test preset: google-tunix has no config of its own for it
        code = [
            "import os, jax.numpy as jnp",
            "from tunix_jax.export.google_tunix import load_with_google_tunix; "
            "from tunix_jax.models.gemma.config import get_config",
            f"gemma, _ = load_with_google_tunix({path}, get_config({config.name!r}), jnp.{dtype})",
        ]
    return {"stock_config": stock, "code": code}
