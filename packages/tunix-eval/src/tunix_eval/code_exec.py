"""``code-exec``: runs the model's code against the item's unit tests (opt-in: it executes
model output).

For every item whose meta carries ``test`` and ``entry_point`` (HumanEval's, named in
:mod:`tunix_core.data.code`), the program ``code_prompt`` (the code the
question showed, when the item has it), then the code in the answer block, then ``test``,
then ``check(entry_point)`` is written to a fresh temporary folder and run there with
``sys.executable -I`` (no user site, no ``PYTHON*`` variables) in an empty environment,
in its own process group, with limits:

- wall time ``timeout_s``: the whole group is killed when it runs over (and a CPU-time
  limit two seconds longer stops a process that escaped the group);
- address space ``memory_mb`` (``RLIMIT_AS``): a larger allocation fails with
  ``MemoryError``; files it writes are capped at 16 MiB and core dumps are off;
- network: where ``unshare -r -n`` works (Linux with unprivileged user namespaces, or
  root) the program runs in a new network namespace with no interface but loopback;
  elsewhere it has the machine's network, and ``network_isolated`` says so.

This is not a sandbox: the program runs as the evaluating user and can read and write
what that user can. Items without tests are skipped and not counted. Exit status 0 is a
pass; ``pass_at_1`` is passes over items with tests (one completion per item).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import attrs

from tunix_core.data.code import CODE_PROMPT, ENTRY_POINT, TEST, answer_code
from tunix_core.data.parse import parse_completion
from tunix_core.errors import DataError
from tunix_core.evaluation import binomial_stderr
from tunix_core.protocols import EvaluatorReport, Prediction, RunContext

FILE_SIZE_LIMIT = 16 * 1024 * 1024
ERROR_CHARS = 300  # of the last line of the program's stderr, kept per item
STDERR_TAIL = 4096  # bytes of stderr read back
POLL_S = 0.005
NETWORK_NAMESPACE = ("unshare", "-r", "-n")


@attrs.frozen
class Outcome:
    """How one program ended: ``status`` is ``passed``, ``failed`` (it raised or exited
    non-zero; a failed assertion is a failed test), ``timeout``, ``memory_limit`` or
    ``crashed`` (killed by a signal)."""

    status: str
    error: str | None
    seconds: float


def network_isolation_works() -> bool:
    """Whether ``unshare -r -n`` can start a program here (probed once per evaluator)."""
    if shutil.which(NETWORK_NAMESPACE[0]) is None:
        return False
    try:
        probe = subprocess.run([*NETWORK_NAMESPACE, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _limits(timeout_s: float, memory_mb: int) -> Callable[[], None]:
    memory = memory_mb * 1024 * 1024
    cpu = int(timeout_s) + 2  # a backstop only: wall time is what is enforced

    def apply() -> None:  # runs in the child, before exec
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def has_tests(prediction: Prediction) -> bool:
    """Whether the item carries tests: ``meta.test`` and ``meta.entry_point``, both or
    neither (one alone is a broken item, refused)."""
    test, entry_point = prediction.meta.get(TEST), prediction.meta.get(ENTRY_POINT)
    if test is None and entry_point is None:
        return False
    if not (isinstance(test, str) and isinstance(entry_point, str) and entry_point.isidentifier()):
        raise DataError(f"item {prediction.id!r}: code-exec needs meta.{TEST} (code) and "
                        f"meta.{ENTRY_POINT} (a function name) together")  # fmt: skip
    return True


def program_for(prediction: Prediction, answer: str) -> str:
    """The program that runs ``prediction``'s tests on ``answer`` (an item with tests)."""
    meta = prediction.meta
    prompt = meta.get(CODE_PROMPT)
    parts = [prompt] if isinstance(prompt, str) else []
    parts += [answer_code(answer), meta[TEST], f"check({meta[ENTRY_POINT]})"]
    return "\n\n".join(parts) + "\n"


@attrs.define
class _Running:
    process: subprocess.Popen[bytes]
    folder: tempfile.TemporaryDirectory[str]
    stderr: IO[bytes]
    started: float


def _last_line(path: Path) -> str | None:
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - STDERR_TAIL))
        lines = handle.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:ERROR_CHARS] if lines else None


class CodeExecEvaluator:
    """Runs answers against their items' tests, ``workers`` programs at a time."""

    name = "code-exec"

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 1024, workers: int = 2) -> None:
        if timeout_s <= 0 or memory_mb <= 0 or workers < 1:
            raise ValueError("timeout_s and memory_mb must be > 0 and workers >= 1")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.workers = workers
        self._isolated: bool | None = None

    @property
    def network_isolated(self) -> bool:
        if self._isolated is None:
            self._isolated = network_isolation_works()
        return self._isolated

    def _start(self, program: str) -> _Running:
        folder = tempfile.TemporaryDirectory(prefix="tunix-code-exec-")
        path = Path(folder.name)
        (path / "program.py").write_text(program, encoding="utf-8")
        stderr = (path / "stderr.txt").open("wb")
        prefix = NETWORK_NAMESPACE if self.network_isolated else ()
        process = subprocess.Popen(
            [*prefix, sys.executable, "-I", "program.py"],
            cwd=path, env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True,
            preexec_fn=_limits(self.timeout_s, self.memory_mb),
        )  # fmt: skip
        return _Running(process, folder, stderr, time.monotonic())

    def _finish(self, job: _Running, timed_out: bool) -> Outcome:
        if timed_out:
            with contextlib.suppress(ProcessLookupError):  # it ended since the poll
                os.killpg(job.process.pid, signal.SIGKILL)
        code = job.process.wait()
        seconds = round(time.monotonic() - job.started, 3)
        job.stderr.close()
        error = _last_line(Path(job.folder.name) / "stderr.txt")
        job.folder.cleanup()
        if timed_out or code == -signal.SIGXCPU:
            return Outcome("timeout", f"ran over {self.timeout_s:g} s", seconds)
        if code == 0:
            return Outcome("passed", None, seconds)
        if error is not None and error.startswith("MemoryError"):
            return Outcome("memory_limit", error, seconds)
        if code < 0:
            return Outcome("crashed", f"killed by {signal.Signals(-code).name}", seconds)
        return Outcome("failed", error, seconds)

    def run_programs(self, programs: Sequence[str]) -> list[Outcome]:
        """Run each program under the limits; outcomes in the same order."""
        outcomes: list[Outcome | None] = [None] * len(programs)
        waiting = list(enumerate(programs))[::-1]
        running: dict[int, _Running] = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.workers:
                    index, program = waiting.pop()
                    running[index] = self._start(program)
                time.sleep(POLL_S)
                now = time.monotonic()
                for index, job in list(running.items()):
                    ended = job.process.poll() is not None
                    overdue = not ended and now - job.started > self.timeout_s
                    if ended or overdue:
                        outcomes[index] = self._finish(job, timed_out=overdue)
                        del running[index]
        finally:
            for job in running.values():  # interrupted: leave no program behind
                self._finish(job, timed_out=True)
        return [outcome for outcome in outcomes if outcome is not None]

    def evaluate(
        self, predictions: Sequence[Prediction], *, context: RunContext
    ) -> EvaluatorReport:
        started = time.monotonic()
        tested: list[tuple[str, str]] = []  # (id, program)
        per_item: dict[str, dict[str, Any]] = {}
        skipped = 0
        for prediction in predictions:
            if not has_tests(prediction):
                skipped += 1
                continue
            answer = parse_completion(prediction.completion).answer
            if answer is None or not answer.strip():
                per_item[prediction.id] = {"passed": False, "outcome": "no_answer",
                                           "error": None, "seconds": 0.0}  # fmt: skip
            else:
                tested.append((prediction.id, program_for(prediction, answer)))
        for (item_id, _), outcome in zip(tested, self.run_programs([p for _, p in tested]),
                                         strict=True):  # fmt: skip
            per_item[item_id] = {"passed": outcome.status == "passed", "outcome": outcome.status,
                                 "error": outcome.error, "seconds": outcome.seconds}  # fmt: skip
        return EvaluatorReport(metrics=self._metrics(per_item, skipped, started), per_item=per_item)

    def _metrics(
        self, per_item: Mapping[str, Mapping[str, Any]], skipped: int, started: float
    ) -> dict[str, Any]:
        n = len(per_item)
        passed = sum(item["passed"] for item in per_item.values())
        return {
            "n": n,
            "skipped_without_tests": skipped,
            "passed": passed,
            "pass_at_1": passed / n if n else 0.0,
            "pass_at_1_stderr": binomial_stderr(passed, n),
            "outcomes": dict(
                sorted(Counter(item["outcome"] for item in per_item.values()).items())
            ),
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "network_isolated": self.network_isolated if n else None,
            "seconds": round(time.monotonic() - started, 3),
        }
