"""The model architectures tunix-jax runs (today Gemma 2 and 3, :mod:`.gemma`). Nothing
here imports training code; ``tests/models/test_layering.py`` checks it."""
