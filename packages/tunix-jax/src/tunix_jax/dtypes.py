"""The dtypes a model's parameters and computations may be configured in, by name
(``model.dtype``, ``trainer.options.compute_dtype``)."""

import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
