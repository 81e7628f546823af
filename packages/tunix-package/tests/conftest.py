"""A realistic finished run of a tiny model, built with the project's own writers.

The tiny model is exported once per session (random init of the tiny preset takes a few
seconds on CPU); each test gets its own run directory holding a copy of that export.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tunix_core.config import load_config, unstructure_config
from tunix_core.data.record import example_from_dict, write_jsonl
from tunix_core.data.render import render_completion, render_prompt
from tunix_core.evaluation import score_predictions
from tunix_core.evidence import sha256_file
from tunix_core.jsonio import append_jsonl
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_core.rundir import RunDirectory
from tunix_core.stages import run_eval_source
from tunix_core.types import (
    BASELINE,
    DATASET,
    EVALUATE,
    TRAIN,
    BaselineDetail,
    DatasetDetail,
    EvaluateDetail,
    StageDetail,
    TrainDetail,
)

QUESTIONS = [
    ("q-003", "What is 3 + 4?", ["Add 3 and 4."], "7"),
    ("q-001", "What is 2 * 5?", ["Multiply 2 by 5."], "10"),
    ("q-002", "What is 9 - 6?", ["Subtract 6 from 9."], "3"),
    ("q-005", "What is 12 / 4?", ["Divide 12 by 4."], "3"),
    ("q-004", "What is 1 + 1?", ["Add 1 and 1."], "2"),
    ("q-006", "What is 5 * 5?", ["Multiply 5 by 5."], "25"),
]
COMMAND = ["tunix", "run", "--model", "tiny-gemma3", "--weights", "random", "--steps", "3"]


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory):
    """``(directory, ModelExport)`` of a random tiny-gemma3 written by write_model_dir."""
    from tunix_jax.export.writing import write_model_dir
    from tunix_jax.weights.loading import load_model

    model, tokenizer = load_model("tiny-gemma3", "random")
    directory = tmp_path_factory.mktemp("export") / "model"
    export = write_model_dir(model, tokenizer, preset="tiny-gemma3", weights="random",
                             directory=directory)  # fmt: skip
    return directory, export


def _examples():
    return [
        example_from_dict({"id": i, "question": q, "steps": s, "answer": a,
                           "meta": {"category": "arithmetic", "difficulty": "easy"}})
        for i, q, s, a in QUESTIONS
    ]  # fmt: skip


def _score(out_dir: Path, label: str, right: int, source: dict) -> dict:
    """Score completions of which the first ``right`` (in file order) are correct."""
    predictions = []
    for index, example in enumerate(_examples()):
        answer = example.answer if index < right else "wrong"
        predictions.append(Prediction(
            id=example.id,
            prompt=render_prompt(example.question),
            completion=render_completion(example.steps, answer),
            expected=example.answer,
            meta={"category": example.meta.category, "section": example.meta.section,
                  "difficulty": example.meta.difficulty},
        ))  # fmt: skip
    return score_predictions(predictions, [], label=label, out_dir=out_dir, source=source, context=RunContext(get_host()))


def _stage(run: RunDirectory, stage: str, detail: StageDetail | None = None) -> None:
    run.start_stage(stage)
    run.finish_stage(stage, 1.5, detail=detail.to_dict() if detail else None)


def build_run(root: Path, export_dir: Path, fingerprint: str, *, baseline: bool = True,
              log_text: str | None = None) -> RunDirectory:  # fmt: skip
    """A run that went through dataset, baseline, train and evaluate (package pending)."""
    overrides = ["run.name=tiny", "model.preset=tiny-gemma3", "model.weights=random",
                 "training.steps=3", f"eval.baseline={str(baseline).lower()}"]  # fmt: skip
    config = load_config(None, overrides)
    run = RunDirectory.create(root, "tiny-20260101-120000", model_id="tiny-gemma3@random",
                              dataset="dev-reasoning-v2", trainer="jax", config_path=None,
                              command=COMMAND)  # fmt: skip
    run.config_path.write_text(yaml.safe_dump(unstructure_config(config), sort_keys=False))
    write_jsonl(_examples()[:4], run.data_dir / "train.jsonl")
    write_jsonl(_examples(), run.data_dir / "eval.jsonl")
    _stage(run, DATASET, DatasetDetail(train_items=4, eval_items=6,
                                       eval_sha256=sha256_file(run.eval_data_path)))  # fmt: skip
    if baseline:
        summary = _score(run.baseline_dir, "baseline", right=1,
                         source=run_eval_source(run, "dev-reasoning-v2"))  # fmt: skip
        _stage(run, BASELINE, BaselineDetail(primary_score=summary["primary_score"]))
    else:
        run.start_stage(BASELINE)
        run.finish_stage(BASELINE, 0.0, status="skipped", detail=BaselineDetail(skipped=True).to_dict())
    append_jsonl(run.metrics_path, [
        {"step": step, "loss": 3.0 / step, "learning_rate": 1e-4, "elapsed_seconds": 2.0 * step}
        for step in (1, 2, 3)
    ])  # fmt: skip
    shutil.copytree(export_dir, run.model_dir)
    run.manifest["model_fingerprint"] = fingerprint
    _stage(run, TRAIN, TrainDetail(steps=3, stopped_early=False, reason=""))
    summary = _score(run.path, "final", right=4, source=run_eval_source(run, "dev-reasoning-v2"))
    _stage(run, EVALUATE, EvaluateDetail(primary_score=summary["primary_score"]))
    run.log_path.write_text(log_text if log_text is not None else
                            "".join(f"line {i} of the run log\n" for i in range(50)))  # fmt: skip
    return run


@pytest.fixture
def make_run(
    tmp_path: Path, tiny_export, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., RunDirectory]:
    """Build a run under ``tmp_path/runs``; the working directory is ``tmp_path/cwd`` (not a
    git checkout, no notebook) unless a test changes it."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    directory, export = tiny_export

    def make(export_dir: Path | None = None, fingerprint: str | None = None,
             **kwargs) -> RunDirectory:  # fmt: skip
        """A run holding the shared tiny export, or the one at ``export_dir``."""
        if export_dir is None:
            export_dir, fingerprint = directory, export.fingerprint
        return build_run(tmp_path / "runs", export_dir, fingerprint, **kwargs)

    return make


@pytest.fixture
def options() -> dict:
    return {"max_bundle_bytes": 1_000_000, "prediction_sample": 3}
