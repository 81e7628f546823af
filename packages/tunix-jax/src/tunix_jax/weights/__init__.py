"""Gemma weights in: Kaggle Flax (Orbax) checkpoints, Hugging Face safetensors, GGUF and
random initialisation, into :mod:`tunix_jax.models.gemma`'s transformer
(:func:`tunix_jax.weights.loading.load_model`)."""
