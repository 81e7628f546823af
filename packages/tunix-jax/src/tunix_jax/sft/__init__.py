"""Supervised fine-tuning: the ``jax`` trainer (:mod:`.trainer`)."""
