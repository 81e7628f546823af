"""Trainers that run google-tunix's own training code (import name ``tunix``) inside a
tunix run. Importing this package imports neither JAX nor google-tunix."""
