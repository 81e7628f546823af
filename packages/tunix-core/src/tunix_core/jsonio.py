"""Atomic JSON and JSONL writing: a reader never sees a half-written evidence file."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tunix_core.errors import DataError


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new, empty temporary file in ``path``'s folder, opened for writing. It gets the
    mode the umask allows (0644 usually), as any file the user writes: ``tempfile.mkstemp``
    would make it 0600, and the rename would keep that."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented, key-sorted JSON, atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def append_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append one JSON object per line and flush, so an interrupted run keeps what it wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def jsonl_lines(text: str) -> list[str]:
    """The lines of JSONL ``text``, split on ``\\n`` only (a file read in text mode has
    ``\\r\\n`` as ``\\n``). Not ``str.splitlines()``: that also breaks on U+2028, U+2029,
    U+0085 and others, which ``json.dumps(..., ensure_ascii=False)`` leaves raw in strings."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last record starts no line
    return lines


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file; a torn last line (an interrupted append) is dropped, any other bad
    line raises ``ValueError`` naming file and line."""
    records: list[dict[str, Any]] = []
    lines = jsonl_lines(path.read_text(encoding="utf-8"))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise ValueError(f"{path}:{number}: invalid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(value).__name__}")
        records.append(value)
    return records


def read_user_jsonl(path: Path) -> list[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of a JSONL file a user gave us.

    Unlike :func:`read_jsonl` (our own files) nothing is forgiven: an unreadable file or a
    bad line raises :class:`~tunix_core.errors.DataError` naming the file and the line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: cannot read: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    rows: list[tuple[int, Any]] = []
    for number, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None
    return rows
