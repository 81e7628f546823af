"""Gemma 2 and 3: config presets, the Flax NNX transformer, the in-memory parameter tree,
tokenizer, sampler and scoring. Loading weights lives in :mod:`tunix_jax.weights`.

Import the submodules directly (`tunix_jax.models.gemma.sampler`, ...); this package
itself stays import-light.
"""
