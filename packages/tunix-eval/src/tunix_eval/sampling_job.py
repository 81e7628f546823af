"""What ``tunix distill`` and ``tunix pairs`` share: a model draws K completions for every
question of a dataset, batch by batch; each batch's decisions are logged, so a job that
was interrupted continues where it stopped.

A job has three files:

- the questions log: one line per question done (every sample and what became of it);
- the output (records, pairs): what the job makes of the log's lines, appended after each
  batch and rebuilt from the log on every rerun;
- the manifest: the settings and counts, rewritten atomically after every batch.

A rerun skips the questions in the log, and the call for batch ``i`` (counted over the
whole split) draws with seed ``seed + i``, so a rerun draws what an uninterrupted run
would have. It must use equal settings; the number of questions is not one of them, so a
rerun with a larger ``--limit`` extends a job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import attrs

from tunix_core.data.record import ReasoningExample
from tunix_core.data.render import render_prompt
from tunix_core.errors import ConfigError, TunixError
from tunix_core.jsonio import append_jsonl, read_jsonl, write_json_atomic, write_text_atomic
from tunix_core.protocols import LoadedModel, SamplingModel
from tunix_core.rundir import utc_now


def _at_least(minimum: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value < minimum:
            raise ConfigError(f"--{attribute.name.replace('_', '-')}: must be at least "
                              f"{minimum}, got {value}")  # fmt: skip

    return check


def _probability(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"--top-p: must be in (0, 1], got {value}")


@attrs.frozen
class Sampling:
    """How the model is asked: ``samples`` completions per question, ``batch_size``
    questions per call; the call for batch ``i`` (counted over the whole split) draws with
    seed ``seed + i``, so a rerun draws what an uninterrupted run would have."""

    samples: int = attrs.field(validator=_at_least(1))
    temperature: float = attrs.field(validator=_at_least(0.0))
    top_p: float = attrs.field(validator=_probability)
    max_new_tokens: int = attrs.field(validator=_at_least(1))
    seed: int
    batch_size: int = attrs.field(validator=_at_least(1))
    system_prompt: str


def require_sampling(model: LoadedModel, backend: str, command: str) -> SamplingModel:
    """``model``, which must draw samples; else :class:`ConfigError` naming ``backend``
    (the flag or config field that chose its backend)."""
    if not isinstance(model, SamplingModel):
        raise ConfigError(f"{backend}: its models cannot draw samples (no sample(); {command} "
                          "needs tunix_core.protocols.SamplingModel)")  # fmt: skip
    return model


class Tally(Protocol):
    """A job's counts over the questions done."""

    def add(self, line: Mapping[str, Any]) -> None:
        """Count one line of the questions log."""

    def as_dict(self) -> dict[str, Any]:
        """The counts, merged into the manifest."""


@attrs.frozen
class SamplingJob:
    """One job: its names in messages, its files, its settings and how it decides."""

    name: str  # the prefix of its progress lines: "[name] ..."
    kind: str  # what its files are, in errors: "a distillation"
    out: Path  # the --out given, named in errors
    log_path: Path
    output_path: Path
    manifest_path: Path
    version: tuple[str, int]  # the manifest's format field and value
    settings: Mapping[str, Any]  # plain data; a rerun must have equal ones
    files: Mapping[str, str]  # the manifest's "files"
    source: str  # "of DATA (SPLIT) to answer with MODEL", for the first progress line
    # The log lines of a batch, from its questions, rendered prompts and K completions each.
    decide: Callable[
        [Sequence[ReasoningExample], Sequence[str], Sequence[str]], list[dict[str, Any]]
    ]
    outputs: Callable[[Mapping[str, Any]], list[dict[str, Any]]]  # the output lines of a log line
    # A batch's result before " in N s", and the running total after "total ".
    batch_summary: Callable[[Sequence[Mapping[str, Any]]], str]
    total_summary: Callable[[Mapping[str, Any]], str]


def _differences(earlier: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: earlier -> now`` for every leaf that differs between two settings dicts."""
    found: list[str] = []
    for key in sorted(earlier.keys() | now.keys()):
        old, new = earlier.get(key), now.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return found


@attrs.frozen
class _Earlier:
    """What an earlier run of the job left."""

    lines: list[dict[str, Any]]
    seconds: float
    created_at: str | None


def check_earlier(job: SamplingJob) -> dict[str, Any] | None:
    """The manifest an earlier run of ``job`` left, None for a new job; :class:`TunixError`
    when its files are not a job of this kind or were made with other settings. Writes
    nothing, so a command can call it before it loads a model."""
    if not job.manifest_path.is_file():
        leftovers = [path.name for path in (job.output_path, job.log_path) if path.exists()]
        if leftovers:
            raise TunixError(f"--out {job.out}: found {', '.join(leftovers)} but no "
                             f"{job.manifest_path.name}: it is not {job.kind} this command can "
                             "continue; choose another --out")  # fmt: skip
        return None
    try:
        earlier = _read_manifest(job.manifest_path, job.version)
    except ValueError as exc:
        raise TunixError(f"{job.manifest_path}: {exc}") from None
    changed = _differences(earlier.get("settings") or {}, job.settings)
    if changed:
        raise TunixError(f"--out {job.out} is {job.kind} made with other settings "
                         f"({'; '.join(changed)}); rerun with the same settings to continue "
                         "it, or choose another --out")  # fmt: skip
    return earlier


def _resume(job: SamplingJob) -> _Earlier:
    """The questions log of an earlier run of ``job`` with equal settings, the seconds it
    took and when it started. Rewrites the log (dropping a line an interrupt cut short) and
    the output from it, so both end where the log ends. Nothing when the job is new."""
    earlier = check_earlier(job)
    if earlier is None:
        return _Earlier([], 0.0, None)
    try:
        lines = read_jsonl(job.log_path) if job.log_path.exists() else []
    except ValueError as exc:
        raise TunixError(str(exc)) from None
    write_text_atomic(job.log_path, "".join(_json_line(line) for line in lines))
    outputs = [output for line in lines for output in job.outputs(line)]
    write_text_atomic(job.output_path, "".join(_json_line(output) for output in outputs))
    return _Earlier(lines, float(earlier.get("seconds") or 0.0), earlier.get("created_at"))


def _read_manifest(path: Path, version: tuple[str, int]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON manifest ({exc})") from None
    key, number = version
    if not isinstance(data, dict) or data.get(key) != number:
        raise ValueError(f"not a manifest this command writes (it has no {key} {number})")
    return data


def _json_line(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"


def run_job(
    model: SamplingModel,
    examples: Sequence[ReasoningExample],
    sampling: Sampling,
    job: SamplingJob,
    tally: Tally,
    *,
    progress: Callable[[str], None],
    command: Sequence[str],
) -> dict[str, Any]:
    """Ask ``model`` for ``sampling.samples`` completions to every question of ``examples``
    not done yet, continuing what an earlier run of ``job`` left (see the module docstring).
    ``tally`` counts every line of the log, the earlier ones too. Returns the final manifest."""
    job.log_path.parent.mkdir(parents=True, exist_ok=True)
    earlier = _resume(job)
    for line in earlier.lines:
        tally.add(line)
    done = {line["id"] for line in earlier.lines}
    seconds = earlier.seconds
    created = earlier.created_at or utc_now()

    def write_manifest() -> dict[str, Any]:
        manifest = {
            job.version[0]: job.version[1],
            "created_at": created,
            "updated_at": utc_now(),
            "command": list(command),
            "settings": dict(job.settings),
            "questions_total": len(examples),
            "complete": all(example.id in done for example in examples),
            "seconds": round(seconds, 3),
            "files": dict(job.files),
            **tally.as_dict(),
        }
        write_json_atomic(job.manifest_path, manifest)
        return manifest

    manifest = write_manifest()
    size = sampling.batch_size
    batches = [examples[start : start + size] for start in range(0, len(examples), size)]
    todo = sum(example.id not in done for example in examples)
    progress(f"[{job.name}] {todo} of {len(examples)} question(s) {job.source}, "
             f"{sampling.samples} sample(s) each"
             + (f"; {len(done)} already done in {job.out}" if done else ""))  # fmt: skip
    for number, whole_batch in enumerate(batches):
        batch = [example for example in whole_batch if example.id not in done]
        if not batch:
            continue
        started = time.perf_counter()
        prompts = [render_prompt(example.question, sampling.system_prompt) for example in batch]
        completions = model.sample(
            [prompt for prompt in prompts for _ in range(sampling.samples)],
            max_new_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
            top_p=sampling.top_p, seed=sampling.seed + number,
        )  # fmt: skip
        if len(completions) != len(batch) * sampling.samples:
            raise TunixError(f"the model returned {len(completions)} completions for "
                             f"{len(batch) * sampling.samples} prompts")  # fmt: skip
        new_lines = job.decide(batch, prompts, completions)
        # The log first: output whose question is not in the log is rebuilt on a rerun.
        append_jsonl(job.log_path, new_lines)
        append_jsonl(
            job.output_path, [output for line in new_lines for output in job.outputs(line)]
        )
        for line in new_lines:
            tally.add(line)
            done.add(line["id"])
        took = time.perf_counter() - started
        seconds += took
        manifest = write_manifest()
        progress(f"[{job.name}] batch {number + 1}/{len(batches)}: {job.batch_summary(new_lines)} "
                 f"in {took:.1f} s; total {job.total_summary(manifest)}, "
                 f"{len(done)}/{len(examples)} question(s)")  # fmt: skip
    return manifest
