"""Reasoning examples: the record, its renderer to the competition format, the parser of
model output, splits, and loading a run's data (one dataset or a mixture) through the
dataset registry. The datasets themselves come from plugins (tunix-datasets)."""
