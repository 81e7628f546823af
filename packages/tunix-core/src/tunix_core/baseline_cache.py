"""The baseline cache: an untrained model's evaluation, kept between runs.

Every run measures the base model before training (``baseline/``), and runs of the same
base model on the same items with the same evaluation settings measure the same thing.
The first such run stores its baseline evaluation here, keyed by all of that (see
:func:`baseline_key`); later runs copy it into their own ``baseline/`` instead of spending
minutes generating it again. The copy's ``source`` names the new run (so the evidence
reads as the run's own) and ``cached_from`` the run that measured it.

The cache lives in ``$TUNIX_BASELINE_CACHE_DIR``, else ``$TUNIX_CACHE_DIR/baselines``, else
``~/.cache/tunix/baselines``: one JSON file per key, written atomically, so a run that
dies while storing leaves no half entry. ``eval.baseline_cache: false`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tunix_core.config import RunConfig
from tunix_core.data.record import ReasoningExample, dumps_jsonl
from tunix_core.jsonio import write_json_atomic, write_text_atomic
from tunix_core.layout import EVAL_SUMMARY, MODEL_CONFIG, PREDICTIONS
from tunix_core.protocols import ModelSpec, RunContext

CACHE_VERSION = 1


def baseline_cache_dir() -> Path:
    """Where baseline evaluations are kept (see the module docstring)."""
    if os.environ.get("TUNIX_BASELINE_CACHE_DIR"):
        return Path(os.environ["TUNIX_BASELINE_CACHE_DIR"])
    if os.environ.get("TUNIX_CACHE_DIR"):
        return Path(os.environ["TUNIX_CACHE_DIR"]) / "baselines"
    return Path.home() / ".cache" / "tunix" / "baselines"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def _file_identity(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def model_fingerprint(spec: ModelSpec) -> dict[str, Any]:
    """What identifies a base model: its spec, the files it names (size and modification
    time: hashing a model file on every run would cost what the cache saves) and, for
    ``init_from``, that run's model fingerprint."""
    files = {}
    named = {"weights": spec.weights.partition(":")[2], "tokenizer": spec.tokenizer}
    for field, value in named.items():
        if value and Path(value).is_file():
            files[field] = _file_identity(Path(value))
    init_from = None
    if spec.init_from is not None:  # the model folder of that run
        exported = json.loads((Path(spec.init_from) / MODEL_CONFIG).read_text(encoding="utf-8"))
        init_from = exported.get("fingerprint")
    return {"spec": json.loads(spec.key()), "files": files, "init_from_fingerprint": init_from}


def baseline_key(
    config: RunConfig,
    context: RunContext,
    examples: Sequence[ReasoningExample],
    *,
    split: str,
) -> dict[str, Any]:
    """The cache key of a baseline evaluation of ``examples`` (the items it scores, after
    ``eval.limit``): the base model, the items' sha256, every evaluation setting that
    shapes a completion or a verdict, and the versions of the code that does either."""
    backend = config.model.backend
    evaluators = list(config.eval.evaluators)
    distributions = {"tunix-core", context.backends.entry(backend).distribution}
    distributions |= {context.evaluators.entry(name).distribution for name in evaluators}
    distributions |= {entry.distribution for entry in context.answer_checks.entries()}
    return {
        "cache_version": CACHE_VERSION,
        "model": {"backend": backend, **model_fingerprint(ModelSpec.for_evaluation(config))},
        "dataset_sha256": hashlib.sha256(dumps_jsonl(examples).encode("utf-8")).hexdigest(),
        "split": split,
        "eval": {
            "max_new_tokens": config.eval.max_new_tokens,
            "batch_size": config.eval.batch_size,
            "limit": len(examples),
            "evaluators": evaluators,
            "decoding": config.eval.decoding.as_dict(),
            "system_prompt": config.dataset.system_prompt,
        },
        "versions": {name: _version(name) for name in sorted(distributions)},
    }


def entry_path(key: Mapping[str, Any]) -> Path:
    """Where ``key``'s entry is (or would be) stored."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()
    return baseline_cache_dir() / f"{digest}.json"


def lookup(key: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored evaluation for ``key`` (``summary`` and ``predictions``), or ``None``.
    An entry that cannot be read, or was stored under another key, counts as a miss."""
    path = entry_path(key)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != json.loads(json.dumps(key)):
        return None
    return entry


def store(key: Mapping[str, Any], out_dir: Path) -> Path:
    """Keep the evaluation written in ``out_dir`` under ``key``; returns the entry's path."""
    path = entry_path(key)
    summary = json.loads((out_dir / EVAL_SUMMARY).read_text(encoding="utf-8"))
    predictions = (out_dir / PREDICTIONS).read_text(encoding="utf-8")
    write_json_atomic(path, {"key": key, "summary": summary, "predictions": predictions})
    return path


def restore(entry: Mapping[str, Any], out_dir: Path, source: Mapping[str, Any]) -> dict[str, Any]:
    """Write a stored evaluation into ``out_dir`` as this run's own: the predictions as
    they were, the summary with ``source`` (naming the run that measured it in
    ``cached_from``). Returns the summary."""
    summary = dict(entry["summary"])
    measured_by = summary.get("source", {}).get("run")
    summary["source"] = {**source, "cached_from": measured_by}
    write_text_atomic(out_dir / PREDICTIONS, entry["predictions"])
    write_json_atomic(out_dir / EVAL_SUMMARY, summary)
    return summary


__all__ = [
    "baseline_cache_dir",
    "baseline_key",
    "entry_path",
    "lookup",
    "model_fingerprint",
    "restore",
    "store",
]
