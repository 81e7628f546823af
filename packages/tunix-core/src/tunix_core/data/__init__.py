"""Reasoning examples: the record, its renderer to the competition format, the parser of
model output, and the built-in dataset providers."""
