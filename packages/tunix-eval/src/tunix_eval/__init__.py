"""tunix-eval: evaluators over predictions and the before/after report."""
