"""The run's words that every layer shares: the names of a run's stages, in order, and
the ``detail`` each stage records in the manifest.

A leaf: it imports nothing of tunix, so the manifest (:mod:`tunix_core.rundir` and its
schema), the stage table (:mod:`tunix_core.stages`), the loggers and the other
distributions that read a run spell a stage and its detail one way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import attrs

DATASET = "dataset"
BASELINE = "baseline"
TRAIN = "train"
EVALUATE = "evaluate"
PACKAGE = "package"
# The order the runner walks them in, and the keys of the manifest's ``stages``.
STAGE_NAMES = (DATASET, BASELINE, TRAIN, EVALUATE, PACKAGE)


@attrs.frozen(kw_only=True)
class StageDetail:
    """What a stage records as ``detail`` in the manifest. ``skipped``: the stage had
    nothing to do (written only when true). Fields that are None are left out."""

    stage: ClassVar[str]
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The detail as the manifest stores it."""
        plain = attrs.asdict(self, recurse=False)
        if not self.skipped:
            del plain["skipped"]
        return {key: value for key, value in plain.items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The detail a manifest records; absent fields (a stage not done yet) are None."""
        names = {field.name for field in attrs.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in names})

    @classmethod
    def read(cls, manifest: Mapping[str, Any]) -> Self:
        """This stage's detail in ``manifest`` (a run's ``run_manifest.json``)."""
        record = (manifest.get("stages") or {}).get(cls.stage) or {}
        return cls.from_dict(record.get("detail") or {})


@attrs.frozen(kw_only=True)
class DatasetDetail(StageDetail):
    stage = DATASET
    train_items: int | None = None
    eval_items: int | None = None
    # sha256 of the eval items saved in data/eval.jsonl: validation tells the run's
    # evaluations from any other by it.
    eval_sha256: str | None = None
    # For a dataset.mix: per split, each part's count and sha256.
    parts: dict[str, list[dict[str, Any]]] | None = None
    # The ood split saved in data/ood.jsonl, when the run evaluates one.
    ood_items: int | None = None
    ood_sha256: str | None = None


@attrs.frozen(kw_only=True)
class BaselineDetail(StageDetail):
    stage = BASELINE
    primary_score: float | None = None


@attrs.frozen(kw_only=True)
class TrainDetail(StageDetail):
    stage = TRAIN
    steps: int | None = None
    # Cut short (a time budget), with its outputs written; ``reason`` says why.
    stopped_early: bool | None = None
    reason: str | None = None
    # For training.phases: each phase's trainer, steps, folder and model fingerprint.
    phases: list[dict[str, Any]] | None = None
    # For model.init_from: the run it started from and that run's model fingerprint.
    init_from: dict[str, Any] | None = None


@attrs.frozen(kw_only=True)
class EvaluateDetail(StageDetail):
    stage = EVALUATE
    primary_score: float | None = None


@attrs.frozen(kw_only=True)
class PackageDetail(StageDetail):
    stage = PACKAGE
    bundle: str | None = None


# Each stage's detail class, by stage name.
STAGE_DETAILS: dict[str, type[StageDetail]] = {
    detail.stage: detail
    for detail in (DatasetDetail, BaselineDetail, TrainDetail, EvaluateDetail, PackageDetail)
}
