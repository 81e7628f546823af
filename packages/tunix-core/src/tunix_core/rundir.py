"""The run directory ``runs/<run-id>/`` and its manifest.

The manifest is rewritten atomically at every stage change and validated against
``schemas/run_manifest.schema.json`` before it is written, so a run never leaves an
invalid manifest behind. One process at a time writes a run: :func:`run_lock`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import platform
import re
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs

from tunix_core.errors import EvidenceError, TunixError
from tunix_core.evidence import MANIFEST_SCHEMA, schema_errors
from tunix_core.jsonio import write_json_atomic
from tunix_core.layout import MANIFEST, RunLayout
from tunix_core.types import STAGE_NAMES

RUN_VERSION = 1
TRACKED_PACKAGES = (
    "tunix-core", "tunix-jax", "tunix-eval", "tunix-package",
    "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tunix-google", "google-tunix",
)  # fmt: skip


class RunLockedError(TunixError):
    """Another live process is writing the run directory."""


@contextlib.contextmanager
def run_lock(layout: RunLayout, command: str) -> Iterator[None]:
    """Hold the run directory's lock file (:data:`~tunix_core.layout.LOCK`) for the block,
    with this process's pid and ``command`` written in it; raise :class:`RunLockedError`
    at once when another process holds it. The lock is ``fcntl.flock``, which the kernel
    drops when its holder dies, so the file a killed run leaves behind never blocks."""
    path = layout.lock_path
    # "a+" neither truncates nor replaces the file: the holder's pid stays readable, and
    # every process locks the same inode.
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that is starting"
            raise RunLockedError(
                f"{layout.path} is in use by {holder}; wait for it to end or stop it"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({command})\n")
        handle.flush()
        yield  # closing the file releases the lock


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id(name: str) -> str:
    """``<name>-YYYYmmdd-HHMMSS``; the name is reduced to safe characters."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    return f"{safe}-{dt.datetime.now(dt.UTC).strftime('%Y%m%d-%H%M%S')}"


def git_commit_sha(start: Path | None = None) -> str | None:
    """The commit of the checkout the run was started from, or ``None`` outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=start or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None`` when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str | None]:
    return {name: installed_version(name) for name in TRACKED_PACKAGES}


def describe_accelerator() -> tuple[str, int]:
    """(accelerator, device count) without importing JAX unless it is already loaded."""
    jax = sys.modules.get("jax")
    if jax is not None:
        devices = jax.devices()
        return f"{devices[0].platform}:{devices[0].device_kind}", len(devices)
    platforms = os.environ.get("JAX_PLATFORMS", "")
    return (f"{platforms or 'unknown'} (JAX not loaded)", 0)


def environment() -> dict[str, Any]:
    accelerator, device_count = describe_accelerator()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "accelerator": accelerator,
        "device_count": device_count,
        "packages": package_versions(),
    }


@attrs.define
class RunDirectory(RunLayout):
    """A run's folder and its manifest; the paths of its files come from :class:`RunLayout`."""

    manifest: dict[str, Any]

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @classmethod
    def create(
        cls,
        root: Path,
        run_id: str,
        *,
        model_id: str,
        dataset: str,
        trainer: str,
        config_path: str | None,
        command: Sequence[str],
        model_choices: Mapping[str, Mapping[str, str]] | None = None,
    ) -> RunDirectory:
        """Make ``root/run_id`` (it must not exist) and write its first manifest;
        ``model_choices``: the ``model.options`` the backend settled for this machine."""
        path = root / run_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise TunixError(f"{path} already exists; use --resume {path} to continue it") from None
        manifest: dict[str, Any] = {
            "run_version": RUN_VERSION,
            "run_id": run_id,
            "model_id": model_id,
            "model_fingerprint": None,
            "dataset": dataset,
            "trainer": trainer,
            "config_path": config_path,
            "command": list(command),
            "commit_sha": git_commit_sha(),
            "timestamp": utc_now(),
            "finished_at": None,
            "environment": environment(),
            "model_choices": {name: dict(choice) for name, choice in (model_choices or {}).items()},
            "status": "created",
            "error": None,
            "stages": {stage: {"status": "pending"} for stage in STAGE_NAMES},
        }
        run = cls(path, manifest)
        run.save()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDirectory:
        """An existing run; its manifest must be readable and valid."""
        manifest_path = RunLayout(path).manifest_path
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TunixError(f"{path} is not a run directory: {MANIFEST} is missing") from None
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"{manifest_path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        problems = schema_errors(manifest, MANIFEST_SCHEMA)
        if problems:
            raise EvidenceError(f"{manifest_path}: " + "; ".join(problems))
        return cls(path, manifest)

    def save(self) -> None:
        problems = schema_errors(self.manifest, MANIFEST_SCHEMA)
        if problems:  # a bug in tunix or a plugin, never user input
            raise EvidenceError(f"refusing to write an invalid {MANIFEST}: " + "; ".join(problems))
        write_json_atomic(self.manifest_path, self.manifest)

    def stage_status(self, stage: str) -> str:
        return str(self.manifest["stages"][stage]["status"])

    def start_stage(self, stage: str) -> None:
        self.manifest["status"] = "running"
        record = self.manifest["stages"][stage]
        record.update(status="running", started_at=utc_now())
        self.save()

    def finish_stage(
        self, stage: str, seconds: float, status: str = "done", detail: dict[str, Any] | None = None
    ) -> None:
        record = self.manifest["stages"][stage]
        # A resumed stage adds to the time it had already spent.
        record.update(status=status, seconds=round(record.get("seconds", 0.0) + seconds, 3))
        record["finished_at"] = utc_now()
        if detail:
            record["detail"] = {**record.get("detail", {}), **detail}
        self.save()

    def finish(self, status: str, error: str | None = None) -> None:
        self.manifest.update(status=status, error=error, finished_at=utc_now())
        self.manifest["environment"] = environment()
        self.save()
