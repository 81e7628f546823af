"""The run's words that every layer shares: the names of a run's stages, in order.

A leaf: it imports nothing of tunix, so the manifest (:mod:`tunix_core.rundir`), the stage
table (:mod:`tunix_core.stages`), the loggers and the other distributions that read a run
spell a stage one way.
"""

from __future__ import annotations

DATASET = "dataset"
BASELINE = "baseline"
TRAIN = "train"
EVALUATE = "evaluate"
PACKAGE = "package"
# The order the runner walks them in, and the keys of the manifest's ``stages``.
STAGE_NAMES = (DATASET, BASELINE, TRAIN, EVALUATE, PACKAGE)
