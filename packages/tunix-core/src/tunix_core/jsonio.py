"""Atomic JSON and JSONL writing: a reader never sees a half-written evidence file."""

from __future__ import annotations

import json
import os
import re
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


# A JSON escape of a UTF-16 surrogate; only a lone one (not half of a pair) survives
# json.loads as a surrogate, and no UTF-8 writer can write that back.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# A lone surrogate in a Python string (from such an escape, or from a plugin's own text).
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
LONE_SURROGATE_PROBLEM = "a lone surrogate (a \\ud800-\\udfff escape without its pair) is not text"


def _lines(data: bytes) -> list[bytes]:
    """The lines of JSONL ``data``, split on ``\\n`` only. Not ``str.splitlines()``: that
    also breaks on U+2028, U+2029, U+0085 and others, which ``json.dumps(...,
    ensure_ascii=False)`` leaves raw in strings. Split as bytes, so one torn line cannot
    stop the others from decoding; a ``\\r`` before the ``\\n`` is JSON whitespace."""
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the newline ending the last record starts no line
    return lines


def _shown(text: str) -> str:
    """``text`` with lone surrogates as ``\\udXXX`` escapes, so a message can be printed."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _lone_surrogate_field(value: Any, field: str) -> str | None:
    """The dotted path of the first string in ``value`` (keys included) that holds a lone
    surrogate, or ``None``."""
    if isinstance(value, str):
        return field if LONE_SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else key
            if LONE_SURROGATE.search(key):
                return name
            found = _lone_surrogate_field(item, name)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate_field(item, f"{field}[{index}]")
            if found is not None:
                return found
    return None


def parse_jsonl(data: bytes, where: str, *, drop_torn_last: bool = False) -> list[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of JSONL ``data``: the one JSONL
    parser. Raises ``ValueError`` saying ``WHERE:LINE: problem`` for a line that is not
    UTF-8, not JSON, or holds a lone surrogate (``"\\ud800"``: valid JSON, but no text
    any writer can encode; the message names the field). With ``drop_torn_last``, a last
    line that does not decode or parse (an interrupted append, perhaps cut inside a
    multibyte character) is dropped instead."""
    rows: list[tuple[int, Any]] = []
    lines = _lines(data)
    for number, raw in enumerate(lines, start=1):
        torn_allowed = drop_torn_last and number == len(lines)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if torn_allowed:
                break
            raise ValueError(
                f"{where}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line)"
            ) from None
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            if torn_allowed:
                break
            raise ValueError(
                f"{where}:{number}: invalid JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if _SURROGATE_ESCAPE.search(line):
            field = _lone_surrogate_field(value, "")
            if field is not None:
                named = f"field '{_shown(field)}'" if field else "the line"
                raise ValueError(f"{where}:{number}: {named}: {LONE_SURROGATE_PROBLEM}")
        rows.append((number, value))
    return rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSONL file we wrote; a torn last line (an interrupted append) is dropped,
    any other bad line raises ``ValueError`` naming file and line."""
    records: list[dict[str, Any]] = []
    for number, value in parse_jsonl(path.read_bytes(), str(path), drop_torn_last=True):
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
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: cannot read: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return parse_jsonl(data, str(path))
    except ValueError as exc:
        raise DataError(str(exc)) from None
