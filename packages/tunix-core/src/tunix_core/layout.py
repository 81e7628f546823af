"""The layout of a run directory ``runs/<run-id>/``: the one place its file names are spelled.

Everything that reads or writes a run (the runner, trainers, evaluation, packagers,
validation, ``tunix runs``) takes the names from here, so a file is never renamed in one
place and missed in another.
"""

from __future__ import annotations

from pathlib import Path

import attrs

MANIFEST = "run_manifest.json"
CONFIG = "config.yaml"
LOG = "run.log"
METRICS = "metrics.jsonl"
LOSS_CURVE = "loss_curve.png"
REPORT = "report.html"  # `tunix report`; the package stage writes one in SUBMISSION too
CHECKPOINTS = "checkpoints"
MODEL = "model"
MODEL_CONFIG = "model_config.json"  # in MODEL; present once the export is complete
# A run of training.phases trains each phase but the last in PHASES/<phase folder>/, and a
# finished phase leaves PHASE_RECORD in its MODEL: its trainer, steps and fingerprint.
PHASES = "phases"
PHASE_RECORD = "phase.json"
DATA = "data"
TRAIN_DATA = "train.jsonl"  # in DATA
EVAL_DATA = "eval.jsonl"  # in DATA
# The dataset's out-of-distribution split, when it has one (in DATA); each evaluation of
# it writes its predictions and summary into OOD inside the evaluation's folder.
OOD_DATA = "ood.jsonl"
OOD = "ood"
BASELINE = "baseline"
# `tunix eval --run RUN --dataset NAME` (tunix-eval) evaluates the run's model on another
# dataset into EVALS/<NAME>/ (its predictions and summary).
EVALS = "evals"
# An evaluation writes both into its folder: the run directory, or BASELINE.
PREDICTIONS = "predictions.jsonl"
EVAL_SUMMARY = "eval_summary.json"
SUBMISSION = "submission"
# `tunix export RUN --format F` writes EXPORTS/<F> (tunix-jax), and beside each export
# <its name>EXPORT_RECORD_SUFFIX: its format, dtype and the sha256 and size of its files.
EXPORTS = "exports"
EXPORT_RECORD_SUFFIX = ".export.json"
LOCK = ".lock"  # held (fcntl.flock) by the process writing the run; holds its pid
TENSORBOARD = "tb"  # event files of the built-in TensorBoard logger
# The `judge` reward's verdicts (tunix-eval), so a resumed run does not ask again.
JUDGE_REWARD_CACHE = "judge_reward_cache.jsonl"
# Written by `tunix sweep` (tunix-sweep) into a run that is one of its trials:
# {"sweep": id, "trial": number}.
SWEEP_TRIAL = "sweep_trial.json"

# What an eval summary reports as primary_score: correct items / all items.
PRIMARY_METRIC = "answer_accuracy"


def model_id(preset: str, weights: str) -> str:
    """The id a run records for its model: ``<preset>@<weights>``."""
    return f"{preset}@{weights}"


@attrs.define
class RunLayout:
    """The paths of a run directory's standard files."""

    path: Path

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def log_path(self) -> Path:
        return self.path / LOG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def loss_curve_path(self) -> Path:
        return self.path / LOSS_CURVE

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def model_dir(self) -> Path:
        return self.path / MODEL

    @property
    def model_config_path(self) -> Path:
        return self.model_dir / MODEL_CONFIG

    @property
    def phases_dir(self) -> Path:
        return self.path / PHASES

    @property
    def phase_record_path(self) -> Path:
        return self.model_dir / PHASE_RECORD

    @property
    def data_dir(self) -> Path:
        return self.path / DATA

    @property
    def train_data_path(self) -> Path:
        return self.data_dir / TRAIN_DATA

    @property
    def eval_data_path(self) -> Path:
        return self.data_dir / EVAL_DATA

    @property
    def ood_data_path(self) -> Path:
        return self.data_dir / OOD_DATA

    @property
    def ood_dir(self) -> Path:
        return self.path / OOD

    @property
    def baseline_ood_dir(self) -> Path:
        return self.baseline_dir / OOD

    @property
    def baseline_dir(self) -> Path:
        return self.path / BASELINE

    @property
    def evals_dir(self) -> Path:
        return self.path / EVALS

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def summary_path(self) -> Path:
        return self.path / EVAL_SUMMARY

    @property
    def baseline_predictions_path(self) -> Path:
        return self.baseline_dir / PREDICTIONS

    @property
    def baseline_summary_path(self) -> Path:
        return self.baseline_dir / EVAL_SUMMARY

    @property
    def submission_dir(self) -> Path:
        return self.path / SUBMISSION

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def sweep_trial_path(self) -> Path:
        return self.path / SWEEP_TRIAL
