"""Rules a submission must satisfy, for a run directory, a submission folder, a bundle
folder (an extracted zip or exported evidence) or a zip.

Every rule returns messages that name the file they are about. The rules: evidence files
match their schemas; scores are measured numbers (no null, NaN or "TBD"), in [0, 1] and
equal to what re-scoring the predictions gives (:mod:`tunix_package.recompute`); each
evaluation is of its run's model and eval items; metrics steps increase; the manifest's
model_id and fingerprint
match the exported weights and the weights match the preset's shapes; every file of a
model export (and of each ``tunix export`` in ``exports/``) has the size and sha256 it was
recorded with, and with ``deep`` each model export reproduces its probe; nothing required
is missing; checksums match; the zip fits its size cap; no entry or path escapes its folder
and nothing is a symbolic link; no safetensors or GGUF file is in a submission (the
competition's file rules).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

from tunix_core.errors import EvidenceError
from tunix_core.evaluation import verdict_counts
from tunix_core.evidence import (
    EVIDENCE_FILES,
    MANIFEST_SCHEMA,
    digest_problems,
    schema_errors,
    sha256_file,
    validate_tree,
)
from tunix_core.jsonio import read_jsonl
from tunix_core.layout import (
    CONFIG,
    EVAL_SUMMARY,
    EXPORT_RECORD_SUFFIX,
    EXPORTS,
    MANIFEST,
    METRICS,
    MODEL,
    MODEL_CONFIG,
    PREDICTIONS,
    PRIMARY_METRIC,
    RunLayout,
    model_id,
)
from tunix_core.protocols import RunContext
from tunix_core.registry import RegistryError
from tunix_core.stages import STAGES
from tunix_core.types import PACKAGE, STAGE_DETAILS, TRAIN
from tunix_package.bundle import (
    BASELINE_SUMMARY,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    REQUIRED_ENTRIES,
    SAMPLE_NAME,
    ZIP_READ_ERRORS,
    entry_parts,
    expansion_limit,
    extract_zip,
    max_bundle_bytes_of,
    read_run_config,
    tree_records,
)
from tunix_package.gate import GATE_FILE, gate_problems
from tunix_package.recompute import (
    eval_data_problems,
    metrics_step_problems,
    rescore_problems,
    source_problems,
)

# Strings that stand in for a number someone meant to fill in later.
PLACEHOLDERS = frozenset(
    {"tbd", "tba", "todo", "fixme", "n/a", "na", "placeholder", "xxx", "???", "nan", "null",
     "inf", "-inf", "infinity"}
)  # fmt: skip
SCORE_TOLERANCE = 1e-9


class NonFinite:
    """A ``NaN``/``Infinity`` token found in a JSON file (plain JSON has no such numbers)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __repr__(self) -> str:
        return self.token


def load_json_strict(path: Path) -> Any:
    """Parse JSON keeping ``NaN``/``Infinity`` visible as :class:`NonFinite` markers."""
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=NonFinite)


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]")
    else:
        yield path, value


def is_placeholder(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() in PLACEHOLDERS


def summary_problems(summary: Any, where: str) -> list[str]:
    """A summary must carry a measured ``primary_score`` in [0, 1] and no placeholders."""
    if not isinstance(summary, dict):
        return [f"{where}: expected a JSON object, got {type(summary).__name__}"]
    problems = []
    for path, value in _walk(summary):
        if isinstance(value, NonFinite) or (isinstance(value, float) and not math.isfinite(value)):
            problems.append(f"{where}: {path} is {value!r}, not a measured number")
        elif is_placeholder(value):
            problems.append(f"{where}: {path} is the placeholder {value!r}, not a measured value")
    if "primary_score" not in summary:
        return [*problems, f"{where}: primary_score is missing"]
    score = summary["primary_score"]
    if score is None:
        problems.append(f"{where}: primary_score is null; a submission needs a measured score")
    elif isinstance(score, NonFinite) or is_placeholder(score):
        pass  # reported above
    elif isinstance(score, bool) or not isinstance(score, int | float):
        problems.append(f"{where}: primary_score must be a number in [0, 1], got {score!r}")
    elif not 0.0 <= score <= 1.0:
        problems.append(f"{where}: primary_score {score!r} is outside [0, 1]")
    else:
        problems += _counts_problems(summary, where)
    return problems


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _counts_problems(summary: dict[str, Any], where: str) -> list[str]:
    """An accuracy must equal the summary's own ``counts.correct / counts.items``."""
    counts = summary.get("counts")
    score = summary.get("primary_score")
    if summary.get("primary_metric") != PRIMARY_METRIC or not isinstance(counts, dict):
        return []
    items, correct = counts.get("items"), counts.get("correct")
    if not (_is_number(score) and _is_number(items) and _is_number(correct)) or items <= 0:
        return []
    if abs(correct / items - score) > SCORE_TOLERANCE:
        return [f"{where}: primary_score {score!r} disagrees with its own counts "
                f"({correct} correct of {items} items = {correct / items:.6f})"]  # fmt: skip
    return []


def consistency_problems(summary: dict[str, Any], predictions: list[dict[str, Any]],
                         summary_where: str, predictions_where: str) -> list[str]:  # fmt: skip
    """The summary must agree with the predictions it summarises: item, correct and
    format counts, and the accuracy recomputed from the per-item ``correct`` verdicts."""
    problems = []
    n = len(predictions)
    recomputed = verdict_counts(predictions)
    counts: dict[str, Any] = summary["counts"] if isinstance(summary.get("counts"), dict) else {}
    for key, actual in recomputed.items():
        if key in counts and counts[key] != actual:
            problems.append(f"{summary_where}: counts.{key} is {counts[key]!r} but "
                            f"{predictions_where} has {actual}")  # fmt: skip
    score = summary.get("primary_score")
    if summary.get("primary_metric") == PRIMARY_METRIC and _is_number(score) and n:
        accuracy = recomputed["correct"] / n
        if abs(accuracy - score) > SCORE_TOLERANCE:
            problems.append(
                f"{summary_where}: primary_score {score!r} disagrees with {predictions_where}, "
                f"where {recomputed['correct']} of {n} predictions are correct ({accuracy:.6f})"
            )
    return problems


def summary_file_problems(summary_path: Path, where: str, predictions_path: Path | None = None,
                          *, context: RunContext) -> list[str]:  # fmt: skip
    """Score rules for one ``eval_summary.json``, checked against its predictions if given."""
    if not summary_path.is_file():
        return [f"{where}: missing"]
    try:
        summary = load_json_strict(summary_path)
    except (ValueError, OSError) as exc:
        return [f"{where}: unreadable JSON ({exc})"]
    problems = summary_problems(summary, where)
    if predictions_path is not None and predictions_path.is_file() and isinstance(summary, dict):
        try:
            predictions = read_jsonl(predictions_path)
        except (ValueError, OSError) as exc:
            return [*problems, f"{predictions_path}: {exc}"]
        problems += consistency_problems(summary, predictions, where, str(predictions_path))
        problems += rescore_problems(summary, predictions, where, str(predictions_path),
                                     context=context)  # fmt: skip
    return problems


def symlink_problems(root: Path) -> list[str]:
    """Every symbolic link under ``root``: evidence must be regular files inside it."""
    problems = []
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(folder) / name
            if path.is_symlink():
                problems.append(
                    f"{path}: is a symbolic link (to {os.readlink(path)}); evidence and model "
                    "files must be regular files inside the folder"
                )
    return problems


def _is_absolute(name: str) -> bool:
    return name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None


def zip_entry_problems(zip_path: Path) -> list[str]:
    """Entries that are absolute, climb out with ``..``, are not plain relative paths,
    are links, repeat, are a file and a folder at once, would expand past
    :func:`expansion_limit`, or are corrupt."""
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, *ZIP_READ_ERRORS) as exc:
        return [f"{zip_path}: not a readable zip ({exc})"]
    problems = []
    seen: set[str] = set()
    folders: dict[str, str] = {}  # every folder an entry implies -> an entry inside it
    with archive:
        infos = archive.infolist()
        for info in infos:
            name = info.filename
            parts = entry_parts(name)
            if _is_absolute(name):
                problems.append(f"{zip_path}: entry {name!r} is an absolute path")
            elif ".." in parts:
                problems.append(f"{zip_path}: entry {name!r} escapes the bundle with '..'")
            elif any(part in ("", ".") or "\0" in part for part in parts):
                problems.append(f"{zip_path}: entry {name!r} is not a plain relative path "
                                "(an empty or '.' part)")  # fmt: skip
            if stat.S_ISLNK(info.external_attr >> 16):
                problems.append(f"{zip_path}: entry {name!r} is a symbolic link")
            key = "/".join(parts)
            if key in seen:
                problems.append(f"{zip_path}: entry {name!r} appears more than once")
            seen.add(key)
            for depth in range(1, len(parts)):
                folders.setdefault("/".join(parts[:depth]), name)
        for info in infos:
            key = "/".join(entry_parts(info.filename))
            if not info.is_dir() and key in folders:
                problems.append(f"{zip_path}: entry {info.filename!r} is a file, but "
                                f"{folders[key]!r} needs it to be a folder")  # fmt: skip
        expanded = sum(info.file_size for info in infos)
        limit = expansion_limit(zip_path.stat().st_size)
        if expanded > limit:
            problems.append(f"{zip_path}: its entries would expand to {expanded:,} bytes "
                            f"(more than {limit:,}); not a tunix bundle")  # fmt: skip
        if not problems:
            try:
                corrupt = archive.testzip()
            except (OSError, *ZIP_READ_ERRORS) as exc:
                return [f"{zip_path}: not a readable zip ({exc})"]
            if corrupt is not None:
                problems.append(f"{zip_path}: entry {corrupt!r} fails its CRC check")
    return problems


def identity_problems(manifest: dict[str, Any], model_config: dict[str, Any],
                      manifest_where: str, config_where: str) -> list[str]:  # fmt: skip
    """The manifest must name the weights the export actually holds."""
    problems = []
    exported_id = model_id(str(model_config.get("preset")), str(model_config.get("weights")))
    if manifest.get("model_id") != exported_id:
        problems.append(
            f"{manifest_where}: model_id is {manifest.get('model_id')!r} but {config_where} "
            f"says the exported weights are {exported_id!r}"
        )
    recorded = manifest.get("model_fingerprint")
    exported = model_config.get("fingerprint")
    if recorded is None:
        problems.append(
            f"{manifest_where}: model_fingerprint is null, but the exported weights have "
            f"fingerprint {exported!r}; the trainer must record what it wrote"
        )
    elif recorded != exported:
        problems.append(
            f"{manifest_where}: model_fingerprint {recorded!r} does not match {config_where} "
            f"fingerprint {exported!r}"
        )
    return problems


def model_dir_problems(model_dir: Path, context: RunContext, *, deep: bool = False) -> list[str]:
    """Problems with a model export, judged by the backend that wrote it (``backend`` in
    its config; exports without one are the ``jax`` backend's) from ``context``'s: its
    files against what it recorded and, with ``deep``, the probe re-run on its weights."""
    try:
        name = str(load_json_strict(model_dir / MODEL_CONFIG).get("backend", "jax"))
    except (OSError, ValueError, AttributeError):
        name = "jax"  # the backend reports the missing or broken config itself
    try:
        backend = context.backends.load(name)()
    except RegistryError as exc:
        return [f"{model_dir}: cannot check the model export: {exc}"]
    problems: list[str] = backend.export_problems(model_dir)
    if deep and not problems:
        round_trip = backend.verify(model_dir, progress=context.progress)
        if round_trip.get("ok") is not True:
            problems.append(f"{model_dir}: re-running the probe does not give the recorded "
                            f"outputs: {json.dumps(round_trip, sort_keys=True)}")  # fmt: skip
    return problems


def export_record_problems(record_path: Path) -> list[str]:
    """The export that ``record_path`` (``<export>.export.json``, written by ``tunix
    export``) describes must hold exactly the files it records, unchanged."""
    problems: list[str] = []
    record = _read_json_object(record_path, str(record_path), problems)
    if record is None:
        return problems or [f"{record_path}: missing"]
    export = record_path.with_name(record_path.name.removesuffix(EXPORT_RECORD_SUFFIX))
    return digest_problems(export, record.get("files"), str(record_path))


def exports_problems(exports_dir: Path) -> list[str]:
    """Every export in a run's ``exports/`` must match the record ``tunix export`` wrote
    beside it; an export without one is reported once, by its top folder or file."""
    if not exports_dir.is_dir():
        return []
    problems: list[str] = []
    covered: list[Path] = []
    for record_path in sorted(exports_dir.rglob(f"*{EXPORT_RECORD_SUFFIX}")):
        problems += export_record_problems(record_path)
        export = record_path.with_name(record_path.name.removesuffix(EXPORT_RECORD_SUFFIX))
        covered += [record_path, export]
    unrecorded = {
        exports_dir / path.relative_to(exports_dir).parts[0]
        for path in exports_dir.rglob("*")
        if path.is_file() and not any(path.is_relative_to(done) for done in covered)
    }
    problems += [f"{path}: has no {EXPORT_RECORD_SUFFIX} record beside it, so its weights "
                 "cannot be checked; write it with `tunix export`" for path in sorted(unrecorded)]  # fmt: skip
    return problems


def _read_json_object(path: Path, where: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        value = load_json_strict(path)
    except FileNotFoundError:
        return None
    except (ValueError, OSError) as exc:
        problems.append(f"{where}: unreadable JSON ({exc})")
        return None
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a JSON object")
        return None
    return value


def bundle_folder_problems(folder: Path, label: str, model_dir: Path | None = None, *,
                           context: RunContext, deep: bool = False) -> list[str]:  # fmt: skip
    """Rules for the contents of a bundle: an extracted zip or exported evidence.

    ``label`` is how files are named in messages (the zip, or the folder itself);
    ``model_dir`` is the model export that sits beside the zip, when there is one.
    """

    in_zip = label.endswith(".zip")

    def where(name: str) -> str:
        return f"{label}:{name}" if in_zip else str(Path(label) / name)

    problems = symlink_problems(folder) + file_rule_problems(folder, where)
    problems += [f"{where(name)}: missing from the bundle" for name in REQUIRED_ENTRIES
                 if not (folder / name).is_file()]  # fmt: skip
    _, schema_problems = validate_tree(folder)
    problems += [p.replace(str(folder) + os.sep, f"{label}:" if in_zip else f"{label}{os.sep}")
                 for p in schema_problems]  # fmt: skip
    sample_problems = _sample_problems(folder / SAMPLE_NAME, where(SAMPLE_NAME))
    problems += sample_problems
    for name in (EVAL_SUMMARY, BASELINE_SUMMARY):
        if (folder / name).is_file():
            problems += summary_file_problems(folder / name, where(name), context=context)
    problems += metrics_step_problems(folder / METRICS, where(METRICS))
    if (folder / GATE_FILE).is_file():  # `tunix gate`'s report: its format rate must pass
        gate = _read_json_object(folder / GATE_FILE, where(GATE_FILE), problems)
        problems += gate_problems(gate, where(GATE_FILE))

    manifest = _read_json_object(folder / MANIFEST, where(MANIFEST), problems)
    summary = _read_json_object(folder / EVAL_SUMMARY, where(EVAL_SUMMARY), [])
    if summary is not None and not sample_problems and (folder / SAMPLE_NAME).is_file():
        problems += rescore_problems(summary, read_jsonl(folder / SAMPLE_NAME),
                                     where(EVAL_SUMMARY), where(SAMPLE_NAME), context=context,
                                     complete=False)  # fmt: skip
    if manifest is not None:
        for name, trained in ((EVAL_SUMMARY, True), (BASELINE_SUMMARY, False)):
            written = _read_json_object(folder / name, where(name), [])
            if written is not None:
                problems += source_problems(written, manifest, trained=trained,
                                            summary_where=where(name),
                                            manifest_where=where(MANIFEST))  # fmt: skip
    model_config = _read_json_object(folder / MODEL_CONFIG, where(MODEL_CONFIG), problems)
    if manifest is not None and model_config is not None:
        problems += identity_problems(manifest, model_config, where(MANIFEST),
                                      where(MODEL_CONFIG))  # fmt: skip

    checksums = _read_json_object(folder / MANIFEST_NAME, where(MANIFEST_NAME), problems)
    if checksums is None:
        return problems
    problems += _checksum_problems(folder, checksums, where)
    round_trip = (checksums.get("model") or {}).get("round_trip") or {}
    if round_trip.get("ok") is not True:
        problems.append(f"{where(MANIFEST_NAME)}: the model round trip did not pass ({round_trip})")
    if model_dir is not None:
        problems += _model_beside_problems(folder, checksums, model_dir, where, context, deep)
    return problems


def _sample_problems(sample_path: Path, where: str) -> list[str]:
    if not sample_path.is_file():
        return []
    try:
        records = read_jsonl(sample_path)
    except (ValueError, OSError) as exc:
        return [f"{where}: {exc}"]
    schema_name = EVIDENCE_FILES[PREDICTIONS][0]
    return [
        f"{where}:{line}: {problem}"
        for line, record in enumerate(records, start=1)
        for problem in schema_errors(record, schema_name)
    ]


def _checksum_problems(folder: Path, checksums: dict[str, Any], where: Any) -> list[str]:
    problems = []
    if checksums.get("format") != MANIFEST_FORMAT:
        problems.append(f"{where(MANIFEST_NAME)}: format is not {MANIFEST_FORMAT!r}")
    listed = checksums.get("files")
    if not isinstance(listed, dict):
        return [*problems, f"{where(MANIFEST_NAME)}: 'files' must map names to checksums"]
    present = tree_records(folder)
    present.pop(MANIFEST_NAME, None)
    for name in sorted(set(listed) - set(present)):
        problems.append(f"{where(name)}: listed in {MANIFEST_NAME} but missing")
    for name in sorted(set(present) - set(listed)):
        problems.append(f"{where(name)}: present but not listed in {MANIFEST_NAME}")
    for name in sorted(set(listed) & set(present)):
        if listed[name] != present[name]:
            problems.append(
                f"{where(name)}: sha256/size do not match {MANIFEST_NAME} (file changed after packaging)"
            )
    return problems


def _model_beside_problems(folder: Path, checksums: dict[str, Any], model_dir: Path,
                           where: Any, context: RunContext, deep: bool) -> list[str]:  # fmt: skip
    if not model_dir.is_dir():
        return [f"{model_dir}: the model export beside the bundle is missing"]
    problems = symlink_problems(model_dir)
    if problems:
        return problems
    problems = model_dir_problems(model_dir, context, deep=deep)
    listed = (checksums.get("model") or {}).get("files") or {}
    present = tree_records(model_dir)
    for name in sorted(set(listed) | set(present)):
        if listed.get(name) != present.get(name):
            state = "missing" if name not in present else "not listed or changed"
            problems.append(f"{model_dir / name}: {state} relative to {where(MANIFEST_NAME)}")
    copy = folder / MODEL_CONFIG
    if (
        copy.is_file()
        and (model_dir / MODEL_CONFIG).is_file()
        and (sha256_file(copy) != sha256_file(model_dir / MODEL_CONFIG))
    ):
        problems.append(f"{model_dir / MODEL_CONFIG}: differs from {where(MODEL_CONFIG)}")
    return problems


def zip_problems(zip_path: Path, model_dir: Path | None = None, *,
                 context: RunContext, deep: bool = False) -> list[str]:  # fmt: skip
    """Rules for a bundle zip: safe entries, size cap, then the contents' rules."""
    problems = zip_entry_problems(zip_path)
    if problems:
        return problems  # never extract an archive with unsafe entries
    with tempfile.TemporaryDirectory(prefix="tunix-bundle-") as tmp:
        folder = Path(tmp)
        try:
            with zipfile.ZipFile(zip_path) as archive:
                extract_zip(archive, folder, expansion_limit(zip_path.stat().st_size))
        except EvidenceError as exc:
            return [str(exc)]
        except ZIP_READ_ERRORS as exc:
            return [f"{zip_path}: not a readable zip ({exc})"]
        cap = max_bundle_bytes_of(read_run_config(folder / CONFIG))
        size = zip_path.stat().st_size
        if size > cap:
            problems.append(f"{zip_path}: {size} bytes is over the bundle cap of {cap} bytes "
                            "(package.max_bundle_bytes)")  # fmt: skip
        problems += bundle_folder_problems(folder, str(zip_path), model_dir, context=context,
                                           deep=deep)  # fmt: skip
    return problems


# The competition's file rules: a submission holds the upstream Orbax params/, the
# tokenizer and the evidence, no safetensors (the multi-session model asks for files that
# are "not safetensors") and no GGUF; `tunix export` writes those into RUN/exports/.
FORBIDDEN_SUFFIXES = (".safetensors", ".gguf")


def file_rule_problems(folder: Path, where: Any = str) -> list[str]:
    """Every safetensors or GGUF file under ``folder``, named by ``where(relative name)``."""
    return [
        f"{where(path.relative_to(folder).as_posix())}: a {path.suffix.lower()[1:]} file in the "
        "submission; the competition takes only the Orbax params/, the tokenizer and the "
        "evidence (`tunix export RUN --format hf|gguf` writes them into RUN/exports/)"
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in FORBIDDEN_SUFFIXES and path.is_file()
    ]


def submission_folder_problems(folder: Path, *, context: RunContext,
                               deep: bool = False) -> list[str]:  # fmt: skip
    """Rules for a submission folder: each zip, and the model export beside them (with
    ``deep``, its probe re-run once), and no safetensors or GGUF anywhere in it."""
    problems = symlink_problems(folder) + file_rule_problems(folder, lambda name: folder / name)
    zips = sorted(folder.glob("*.zip"))
    if not zips:
        return [*problems, f"{folder}: no submission zip found"]
    model_dir = folder / MODEL
    for index, zip_path in enumerate(zips):
        problems += zip_problems(zip_path, model_dir, context=context, deep=deep and index == 0)
    return problems


def run_directory_problems(run_dir: Path, *, context: RunContext, include_submission: bool = True,
                           deep: bool = False) -> list[str]:  # fmt: skip
    """Rules for a run directory: what each finished stage must have left behind, honest
    scores, a manifest that names the weights in ``model/``, weight files as they were
    exported (with ``deep``, the probe re-run on them), and a valid submission."""
    layout = RunLayout(run_dir)
    problems = symlink_problems(run_dir)
    manifest = _read_json_object(layout.manifest_path, str(layout.manifest_path), problems)
    if manifest is None:
        return [*problems, f"{layout.manifest_path}: missing"]
    problems += [
        f"{layout.manifest_path}: {p}" for p in schema_errors(manifest, MANIFEST_SCHEMA)
    ]
    stages = manifest.get("stages") or {}

    def done(stage: str) -> bool:
        record = stages.get(stage) or {}
        return record.get("status") == "done" and not STAGE_DETAILS[stage].read(manifest).skipped

    for stage in STAGES:
        if done(stage.name):
            problems += [f"{output}: missing, though the {stage.name} stage is done"
                         for output in stage.outputs(layout) if not output.exists()]  # fmt: skip
    for summary_path, predictions_path, trained in (
        (layout.summary_path, layout.predictions_path, True),
        (layout.baseline_summary_path, layout.baseline_predictions_path, False),
    ):
        if summary_path.is_file():
            problems += summary_file_problems(summary_path, str(summary_path), predictions_path,
                                              context=context)  # fmt: skip
            summary = _read_json_object(summary_path, str(summary_path), [])
            if summary is not None:
                problems += source_problems(summary, manifest, trained=trained,
                                            summary_where=str(summary_path),
                                            manifest_where=str(layout.manifest_path))  # fmt: skip
    problems += eval_data_problems(manifest, layout.eval_data_path, str(layout.manifest_path))
    problems += metrics_step_problems(layout.metrics_path, str(layout.metrics_path))
    model_config_path = layout.model_config_path
    if done(TRAIN) and model_config_path.is_file():
        model_config = _read_json_object(model_config_path, str(model_config_path), problems)
        if model_config is not None:
            problems += identity_problems(manifest, model_config, str(layout.manifest_path),
                                          str(model_config_path))  # fmt: skip
        problems += model_dir_problems(layout.model_dir, context, deep=deep)
    problems += exports_problems(run_dir / EXPORTS)
    submission = layout.submission_dir
    if include_submission and (done(PACKAGE) or submission.is_dir()):
        problems += submission_folder_problems(submission, context=context, deep=deep)
    return problems


def validate_path(path: Path, *, context: RunContext, deep: bool = False) -> list[str]:
    """Every problem with ``path``: a run directory, a submission folder, a bundle folder,
    a zip, an export of ``tunix export`` or one evidence file; ``context``'s backends and
    evaluators judge the model and recompute the scores. Model files are checked against
    their recorded sizes and sha256; ``deep`` also re-runs each model export's probe."""
    if path.is_symlink():
        return [f"{path}: is a symbolic link; give the real path"]
    absolute = path.absolute()
    record_path = absolute.with_name(absolute.name + EXPORT_RECORD_SUFFIX)
    if record_path.is_file():
        return export_record_problems(record_path)
    if path.is_file():
        if path.suffix == ".zip":
            beside = path.parent / MODEL
            return zip_problems(path, beside if beside.is_dir() else None, context=context,
                                deep=deep)  # fmt: skip
        if path.name == EVAL_SUMMARY:
            return summary_file_problems(path, str(path), path.parent / PREDICTIONS,
                                         context=context)  # fmt: skip
        return []
    if (path / MANIFEST_NAME).is_file():
        return bundle_folder_problems(path, str(path), context=context)
    if RunLayout(path).manifest_path.is_file():
        return run_directory_problems(path, context=context, deep=deep)
    if any(path.glob("*.zip")) or (path / MODEL).is_dir():
        return submission_folder_problems(path, context=context, deep=deep)
    return [
        problem
        for summary in sorted(path.rglob(EVAL_SUMMARY))
        for problem in summary_file_problems(summary, str(summary), summary.parent / PREDICTIONS,
                                             context=context)
    ]
