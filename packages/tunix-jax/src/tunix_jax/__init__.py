"""tunix-jax: Gemma 2 / Gemma 3 in Flax NNX, weight loading, tokenizer, sampler, SFT trainer.

Importing this package is cheap: JAX loads only with the submodules that need it.
"""

__version__ = "0.1.0"
