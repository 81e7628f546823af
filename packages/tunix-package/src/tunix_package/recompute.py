"""Evidence that validation recomputes instead of trusting: the verdicts and scores of an
evaluation (re-scored from its completions), where the evaluation came from (the run's
manifest), and the order of the training metrics. See docs/evidence.md.

Every rule returns problem lines that name the file, and the item id and field when
there is one.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunix_core.errors import TunixError
from tunix_core.evaluation import (
    VERDICT_FIELDS,
    prediction_from_record,
    score_predictions,
)
from tunix_core.evidence import sha256_file
from tunix_core.jsonio import read_jsonl
from tunix_core.layout import PREDICTIONS
from tunix_core.protocols import Evaluator, Prediction, RunContext
from tunix_core.types import DatasetDetail

# The judge asks a model for its verdicts: re-running it would cost a model and need not
# agree, so its per-item scores and its metrics are taken as written.
NOT_RECOMPUTED = frozenset({"judge"})
# The parts of a summary that follow from the completions alone.
RECOMPUTED_SUMMARY_FIELDS = ("counts", "primary_score", "primary_score_stderr", "decided_by",
                             "scorecard", "evaluators")  # fmt: skip
TOLERANCE = 1e-9


def _evaluator_order(summary: Mapping[str, Any]) -> list[str]:
    """The evaluators to re-run, in an order that reproduces ``decided_by`` (the summary
    keeps their metrics under sorted keys, so the original order is not written down):
    the evaluators that decided a verdict first, then the others."""
    names = [n for n in summary.get("evaluators") or {} if n not in NOT_RECOMPUTED]
    decided_by = summary.get("decided_by") or {}
    deciders = [decided_by.get(field) for field in VERDICT_FIELDS]
    first = [n for n in dict.fromkeys(deciders) if n in names]
    return first + sorted(n for n in names if n not in first)


def _load_evaluators(names: Sequence[str], context: RunContext) -> list[Evaluator]:
    return [context.evaluators.load(name)() for name in names]


def _rescore(summary: Mapping[str, Any], predictions: Sequence[Prediction], context: RunContext
             ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:  # fmt: skip
    """The summary and the prediction lines (by id) that scoring ``predictions`` again
    with the summary's evaluators and ``context``'s answer checks writes."""
    evaluators = _load_evaluators(_evaluator_order(summary), context)
    with tempfile.TemporaryDirectory(prefix="tunix-rescore-") as tmp:
        rescored = score_predictions(predictions, evaluators, label="rescore", out_dir=Path(tmp),
                                     context=context)  # fmt: skip
        records = {str(r["id"]): r for r in read_jsonl(Path(tmp) / PREDICTIONS)}
    return rescored, records


def _object(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (its schema check reports it)."""
    return value if isinstance(value, dict) else {}


def _same(written: Any, recomputed: Any) -> bool:
    if isinstance(written, bool) or isinstance(recomputed, bool):
        return written is recomputed
    if isinstance(written, int | float) and isinstance(recomputed, int | float):
        return math.isclose(written, recomputed, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(written == recomputed)


def differences(written: Any, recomputed: Any, path: str) -> Iterator[tuple[str, Any, Any]]:
    """``(path, written, recomputed)`` for every leaf where two JSON values differ."""
    if isinstance(written, dict) and isinstance(recomputed, dict):
        for key in sorted(set(written) | set(recomputed), key=str):
            yield from differences(written.get(key), recomputed.get(key), f"{path}.{key}")
    elif not _same(written, recomputed):
        yield path, written, recomputed


def rescore_problems(summary: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                     summary_where: str, predictions_where: str, *, context: RunContext,
                     complete: bool = True) -> list[str]:  # fmt: skip
    """Score ``records`` (lines of ``predictions.jsonl``) again and compare every per-item
    verdict and evaluator score, and (when ``complete``: the records are all the summary
    summarises, not a sample) every aggregate of ``summary``, with what is written."""
    try:
        predictions = [prediction_from_record(record) for record in records]
    except (KeyError, TypeError, ValueError) as exc:
        return [f"{predictions_where}: cannot re-score: a line lacks {exc}"]
    if not predictions:
        return []
    try:
        rescored, recomputed = _rescore(summary, predictions, context)
    except TunixError as exc:
        return [f"{summary_where}: cannot re-score {predictions_where}: {exc}"]
    problems = []
    for record in records:
        item_id = str(record["id"])
        again = recomputed[item_id]
        for field in VERDICT_FIELDS:
            if not _same(record.get(field), again[field]):
                problems.append(f"{predictions_where}: item {item_id!r}: {field} is "
                                f"{record.get(field)!r}, but re-scoring gives {again[field]!r}")  # fmt: skip
        scores = _object(record.get("scores"))
        for name, fields in sorted(again["scores"].items()):
            for path, was, now in differences(scores.get(name), fields, f"scores.{name}"):
                problems.append(f"{predictions_where}: item {item_id!r}: {path} is {was!r}, "
                                f"but re-scoring gives {now!r}")  # fmt: skip
    if complete:
        for field in RECOMPUTED_SUMMARY_FIELDS:
            written = summary.get(field)
            if field == "evaluators" and isinstance(written, dict):
                written = {k: v for k, v in written.items() if k not in NOT_RECOMPUTED}
            for path, was, now in differences(written, rescored[field], field):
                problems.append(f"{summary_where}: {path} is {was!r}, but re-scoring "
                                f"{predictions_where} gives {now!r}")  # fmt: skip
    return problems


def _recorded_eval_sha256(manifest: Mapping[str, Any]) -> str | None:
    return DatasetDetail.read(manifest).eval_sha256


def source_problems(summary: Mapping[str, Any], manifest: Mapping[str, Any], *,
                    trained: bool, summary_where: str, manifest_where: str) -> list[str]:  # fmt: skip
    """An evaluation stored in a run must be of that run: its ``source`` names the run,
    the model the run trained (``trained``: the final evaluation) and the eval items the
    run saved.

    A run written before summaries recorded ``model_fingerprint`` and ``dataset_sha256``
    has no ``eval_sha256`` in its dataset stage; for it only what is recorded is compared.
    """
    source = _object(summary.get("source"))
    run_id = manifest.get("run_id")
    if source.get("run") != run_id:
        return [f"{summary_where}: source.run is {source.get('run')!r}, but {manifest_where} "
                f"is run {run_id!r}; this evaluation is not the run's own"]  # fmt: skip
    recorded_sha = _recorded_eval_sha256(manifest)
    problems = []
    expected = {"dataset_sha256": recorded_sha}
    if trained:
        expected["model_fingerprint"] = manifest.get("model_fingerprint")
    for field, value in expected.items():
        if field not in source and recorded_sha is None:
            continue  # an older run: not recorded on either side
        if source.get(field) != value:
            problems.append(f"{summary_where}: source.{field} is {source.get(field)!r}, but "
                            f"{manifest_where} records {value!r}")  # fmt: skip
    return problems


def eval_data_problems(manifest: Mapping[str, Any], eval_data: Path, manifest_where: str
                       ) -> list[str]:  # fmt: skip
    """The run's saved eval items must still be those the dataset stage recorded."""
    recorded_sha = _recorded_eval_sha256(manifest)
    if recorded_sha is None:
        return []
    actual = sha256_file(eval_data) if eval_data.is_file() else None
    if actual == recorded_sha:
        return []
    return [f"{eval_data}: sha256 is {actual}, but {manifest_where} records {recorded_sha} "
            "(the eval items changed after the dataset stage)"]  # fmt: skip


def metrics_step_problems(metrics_path: Path, where: str) -> list[str]:
    """The steps in ``metrics.jsonl`` must be integers that strictly increase."""
    try:
        records = read_jsonl(metrics_path)
    except FileNotFoundError:
        return []
    except (ValueError, OSError) as exc:
        return [f"{where}: {exc}"]
    problems = []
    previous: int | None = None
    for line, record in enumerate(records, start=1):
        step = record.get("step")
        if isinstance(step, bool) or not isinstance(step, int):
            problems.append(f"{where}:{line}: step is {step!r}, not an integer")
            continue
        if previous is not None and step <= previous:
            problems.append(f"{where}:{line}: step {step} does not follow step {previous}; "
                            "steps must strictly increase")  # fmt: skip
        previous = step
    return problems
