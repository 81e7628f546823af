"""Gemma models: config presets, Flax NNX transformer, weights, tokenizer and sampler.

Import the submodules directly (`tunix_jax.model.loading`, `.sampler`, ...); this
package itself stays import-light.
"""
