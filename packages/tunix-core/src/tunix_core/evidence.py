"""Evidence files and the JSON Schemas (draft 2020-12) they must satisfy."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from tunix_core.jsonio import read_jsonl
from tunix_core.layout import EVAL_SUMMARY, MANIFEST, METRICS, PREDICTIONS
from tunix_core.types import STAGE_NAMES

MANIFEST_SCHEMA = "run_manifest"

# file name -> (schema name, whether the file is JSON Lines validated line by line)
EVIDENCE_FILES: dict[str, tuple[str, bool]] = {
    MANIFEST: (MANIFEST_SCHEMA, False),
    EVAL_SUMMARY: ("eval_summary", False),
    METRICS: ("metrics_record", True),
    PREDICTIONS: ("prediction", True),
}


def stage_names_pattern() -> str:
    """The pattern the manifest schema matches stage names with: exactly :data:`STAGE_NAMES`."""
    return f"^({'|'.join(map(re.escape, STAGE_NAMES))})$"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema ``name`` shipped in ``tunix_core/schemas/NAME.schema.json``. The run
    manifest's stage names come from :data:`STAGE_NAMES` here, so they are spelled once."""
    text = resources.files("tunix_core").joinpath("schemas", f"{name}.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    if name == MANIFEST_SCHEMA:
        schema["properties"]["stages"]["patternProperties"] = {
            stage_names_pattern(): {"$ref": "#/$defs/stage"}
        }
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def schema_errors(instance: Any, schema_name: str) -> list[str]:
    """Every violation of ``schema_name`` as ``path: message``, in a stable order."""
    validator = jsonschema.Draft202012Validator(
        load_schema(schema_name), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    problems = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        problems.append(f"{where}: {error.message}")
    return problems


def validate_file(path: Path) -> list[str]:
    """Problems of one evidence file (named as in :data:`EVIDENCE_FILES`), each prefixed
    with the file and, for JSONL, the line."""
    try:
        schema_name, is_lines = EVIDENCE_FILES[path.name]
    except KeyError:
        return [f"{path}: not a known evidence file (known: {', '.join(EVIDENCE_FILES)})"]
    try:
        if is_lines:
            records = read_jsonl(path)
            return [
                f"{path}:{line}: {problem}"
                for line, record in enumerate(records, start=1)
                for problem in schema_errors(record, schema_name)
            ]
        return [f"{path}: {p}" for p in schema_errors(json.loads(path.read_text("utf-8")), schema_name)]
    except FileNotFoundError:
        return [f"{path}: missing"]
    except (ValueError, OSError) as exc:
        return [f"{path}: {exc}"]


def validate_tree(root: Path) -> tuple[list[Path], list[str]]:
    """Validate every evidence file under ``root`` (a run, a bundle folder or one file).
    Returns the files checked and the problems found."""
    if root.is_file():
        return [root], validate_file(root)
    checked = sorted(p for p in root.rglob("*") if p.name in EVIDENCE_FILES and p.is_file())
    return checked, [problem for path in checked for problem in validate_file(path)]


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file's bytes, read in blocks (model files can be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _regular_files(root: Path) -> dict[str, Path]:
    """``relative/posix/path -> path`` of the regular files under the folder ``root``, or
    ``{name: root}`` for the file ``root``."""
    if root.is_file():
        return {root.name: root}
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def file_digests(root: Path, *, skip: Collection[str] = ()) -> dict[str, dict[str, Any]]:
    """``relative/posix/path -> {"sha256", "bytes"}`` of every regular file under the
    folder ``root`` (or of the file ``root``, by its name) but those named in ``skip``;
    what an export records so that its files can be checked."""
    return {
        name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for name, path in _regular_files(root).items()
        if name not in skip
    }


def digest_problems(root: Path, recorded: Any, where: str, *,
                    skip: Collection[str] = ()) -> list[str]:  # fmt: skip
    """The files under ``root`` (a folder, or one file) but ``skip`` that differ from
    ``recorded`` (what :func:`file_digests` gave when they were written; ``where`` names
    the record): a size or sha256 that changed, a recorded file that is gone, a file that
    was never recorded. Sizes are compared first, so a file of the wrong size is not read."""
    if not isinstance(recorded, dict) or not recorded:
        return [f"{where}: records no file digests, so the files of {root} cannot be checked; "
                "export them again"]  # fmt: skip
    if not root.exists():
        return [f"{root}: missing; {where} records it"]
    problems = []
    present = _regular_files(root)
    base = root.parent if root.is_file() else root
    for name in sorted(set(recorded) | set(present)):
        if name in skip:
            continue
        record, path = recorded.get(name), present.get(name)
        if path is None:
            problems.append(f"{base / name}: missing; {where} records it")
        elif not isinstance(record, dict):
            problems.append(f"{path}: not recorded in {where} (added after the export)")
        elif path.stat().st_size != record.get("bytes"):
            size = record.get("bytes")
            shown = f"{size:,}" if isinstance(size, int) else repr(size)
            problems.append(f"{path}: {path.stat().st_size:,} bytes, but {where} records "
                            f"{shown} (changed after the export)")  # fmt: skip
        elif sha256_file(path) != record.get("sha256"):
            problems.append(f"{path}: sha256 differs from {where} (changed after the export)")
    return problems
