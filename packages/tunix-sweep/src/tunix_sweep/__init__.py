"""tunix-sweep: hyperparameter sweeps over tunix runs (``tunix sweep``, docs/sweep.md)."""
