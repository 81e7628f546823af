"""The parts the jax-backend trainers share: data batching, loss, LoRA, optimizer,
checkpoints, the training loop, what both trainers do around it, loss plots and the
``bench train`` command. The device mesh is :mod:`tunix_jax.sharding`.

Every module here imports JAX; only :mod:`tunix_jax.training.bench` (whose command imports
JAX inside its body) is light. The options they read live in :mod:`tunix_jax.options`.
"""
