"""The pieces of a submission bundle: names, the capped log, the prediction sample, the
notebook lookup, checksums and a byte-for-byte reproducible zip.

Nothing here imports JAX; the model export and its round trip live in ``tunix_jax.export``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from tunix_core.errors import EvidenceError
from tunix_core.evidence import sha256_file
from tunix_core.jsonio import read_jsonl
from tunix_core.layout import BASELINE, CONFIG, EVAL_SUMMARY, LOG, MANIFEST, METRICS, MODEL_CONFIG
from tunix_core.rundir import RunDirectory

DEFAULT_MAX_BUNDLE_BYTES = 1_000_000
DEFAULT_MAX_LOG_BYTES = 200_000
DEFAULT_PREDICTION_SAMPLE = 20

MANIFEST_NAME = "MANIFEST"
MANIFEST_FORMAT = "tunix-kaggle-bundle"
MANIFEST_VERSION = 1
README_NAME = "README_SUBMISSION.md"
SAMPLE_NAME = "predictions_sample.jsonl"
NOTEBOOK_PATH = "notebooks/kaggle_submission.ipynb"
BASELINE_SUMMARY = f"{BASELINE}/{EVAL_SUMMARY}"

# Every bundle holds these; the notebook and the baseline summary are optional.
REQUIRED_ENTRIES = (
    MANIFEST,
    EVAL_SUMMARY,
    METRICS,
    CONFIG,
    LOG,
    SAMPLE_NAME,
    MODEL_CONFIG,
    README_NAME,
    MANIFEST_NAME,
)

# The earliest time a zip can store: fixed so the same run always gives the same bytes.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
ZIP_FILE_MODE = 0o100644


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_record(data: bytes) -> dict[str, Any]:
    return {"sha256": sha256_bytes(data), "bytes": len(data)}


def tree_records(root: Path) -> dict[str, dict[str, Any]]:
    """``relative/posix/path -> {sha256, bytes}`` for every regular file under ``root``."""
    records = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        records[path.relative_to(root).as_posix()] = {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
        }
    return records


def read_run_config(config_path: Path) -> dict[str, Any]:
    """The resolved config a run saved (plain data); empty when it is missing or unreadable."""
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def max_bundle_bytes_of(config: Mapping[str, Any]) -> int:
    """``package.max_bundle_bytes`` of a resolved config, or the default cap."""
    value = (config.get("package") or {}).get("max_bundle_bytes")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_MAX_BUNDLE_BYTES


def bundle_name(run: RunDirectory) -> str:
    """``<run-name>_<YYYYmmdd>_<shortsha>.zip`` from the run's config and manifest."""
    config = read_run_config(run.config_path)
    name = str((config.get("run") or {}).get("name") or run.run_id)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    date = re.sub(r"\D", "", str(run.manifest.get("timestamp", "")))[:8] or "nodate"
    sha = run.manifest.get("commit_sha") or ""
    return f"{name}_{date}_{sha[:7] if sha else 'nogit'}.zip"


def cap_log(data: bytes, limit: int) -> tuple[bytes, bool]:
    """``data`` if it fits in ``limit`` bytes, else its head and tail around one marker line.

    The cut falls on line boundaries; the tail is kept because a run's end (its errors and
    its final scores) matters more than the middle.
    """
    if len(data) <= limit:
        return data, False
    marker_template = (
        "[tunix package: {cut} bytes of " + LOG + " cut here to keep the bundle under its size cap]\n"
    )
    budget = max(limit - len(marker_template) - 24, 0)
    head_end = data.rfind(b"\n", 0, budget // 2 + 1) + 1
    tail_start = len(data) - (budget - head_end)
    newline = data.find(b"\n", tail_start - 1)
    tail_start = len(data) if newline < 0 else newline + 1
    head, tail = data[:head_end], data[tail_start:]
    marker = marker_template.format(cut=len(data) - len(head) - len(tail)).encode()
    return head + marker + tail, True


def prediction_sample(predictions_path: Path, count: int) -> tuple[bytes, int]:
    """The first ``count`` predictions by id as JSONL bytes, and how many there were."""
    records = read_jsonl(predictions_path)
    chosen = sorted(records, key=lambda r: str(r.get("id", "")))[:count]
    lines = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in chosen)
    return lines.encode("utf-8"), len(records)


def _git_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def find_notebook(run: RunDirectory, override: str | None = None) -> tuple[bytes | None, str]:
    """The Kaggle notebook and where it came from.

    Looks, in order, at an explicit path, the notebook as of the run's commit in the
    checkout around the working directory or the run directory, and the working tree
    file. Returns ``(None, reason)`` when there is none.
    """
    if override:
        path = Path(override)
        if not path.is_file():
            return None, f"the notebook given in package.options.notebook ({path}) does not exist"
        return path.read_bytes(), f"file {path}"
    sha = run.manifest.get("commit_sha")
    roots = []
    for start in (Path.cwd().absolute(), run.path.absolute()):
        root = _git_root(start)
        if root is not None and root not in roots:
            roots.append(root)
    for root in roots:
        if sha:
            shown = subprocess.run(
                ["git", "show", f"{sha}:{NOTEBOOK_PATH}"],
                cwd=root,
                capture_output=True,
                timeout=30,
                check=False,
            )
            if shown.returncode == 0:
                return shown.stdout, f"git {sha[:12]}:{NOTEBOOK_PATH} in {root}"
    for root in [*roots, Path.cwd().absolute()]:
        candidate = root / NOTEBOOK_PATH
        if candidate.is_file():
            return candidate.read_bytes(), f"working tree {candidate}"
    return None, f"{NOTEBOOK_PATH} was not found at the run's commit or in the working directory"


# What reading a damaged or hostile zip may raise besides OSError: bad headers, bad CRCs,
# truncated or corrupt deflate streams, and compression or encryption zipfile cannot read.
ZIP_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
                   ValueError)  # fmt: skip
# How far a bundle may expand when extracted: twenty times its zip, at least 16 MiB. A real
# bundle (text, at most a few megabytes) expands well under that; a zip bomb does not.
MIN_EXPANSION_LIMIT = 16 * 1024 * 1024
MAX_EXPANSION_RATIO = 20
CHUNK_BYTES = 1 << 16


def expansion_limit(zip_bytes: int) -> int:
    """The most bytes a zip of ``zip_bytes`` bytes may extract to."""
    return max(MIN_EXPANSION_LIMIT, MAX_EXPANSION_RATIO * zip_bytes)


def entry_parts(name: str) -> list[str]:
    """The folders and file name of a zip entry (``/`` or ``\\`` separated; a folder
    entry's trailing separator dropped)."""
    return re.split(r"[\\/]", name[:-1] if name.endswith(("/", "\\")) else name)


def extract_zip(archive: zipfile.ZipFile, destination: Path, limit: int) -> list[Path]:
    """Extract the file entries of ``archive`` (whose names ``zip_entry_problems`` has
    accepted) under ``destination``, streaming, and stop with :class:`EvidenceError` once
    more than ``limit`` bytes came out: headers may understate the sizes."""
    written: list[Path] = []
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        target = destination.joinpath(*entry_parts(info.filename))
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as source, target.open("wb") as sink:
            while chunk := source.read(CHUNK_BYTES):
                total += len(chunk)
                if total > limit:
                    raise EvidenceError(
                        f"{archive.filename}: extracting {info.filename!r} went past "
                        f"{limit:,} bytes; not a tunix bundle"
                    )
                sink.write(chunk)
        written.append(target)
    return written


def deterministic_zip(entries: Mapping[str, bytes]) -> bytes:
    """A zip of ``entries`` with sorted names, fixed timestamps and fixed permissions."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ZIP_FILE_MODE << 16
            info.create_system = 3  # unix, so the mode above is read back as such
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()
