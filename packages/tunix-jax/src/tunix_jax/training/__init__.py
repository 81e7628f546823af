"""The ``jax`` SFT trainer's parts: data batching, loss, LoRA, optimizer, mesh,
checkpoints, the training loop and the ``bench train`` command.

Every module here imports JAX; only :mod:`tunix_jax.train.bench` (whose command imports
JAX inside its body) is light. The options they read live in :mod:`tunix_jax.options`.
"""
