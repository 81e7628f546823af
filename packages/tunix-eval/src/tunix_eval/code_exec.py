"""``code-exec``: runs the model's code against the item's unit tests (opt-in: it executes
model output).

For every item whose meta carries ``test`` and ``entry_point`` (HumanEval's, named in
:mod:`tunix_core.data.code`), the program ``code_prompt`` (the code the
question showed, when the item has it), then the code in the answer block, then ``test``,
then ``check(entry_point)`` is written to a fresh temporary folder and run there with
``sys.executable -I`` (no user site, no ``PYTHON*`` variables) in an empty environment,
in a new session, with limits and containment that depend on what the machine offers
(:class:`Containment`, probed once per evaluator; docs/evaluation.md has the table):

- wall time ``timeout_s`` (a CPU-time limit two seconds longer backs it up), address
  space ``memory_mb``, files of at most 16 MiB, no core dumps, at most
  ``PROCESS_LIMIT`` more processes for its user (``RLIMIT_NPROC``, which does not bind
  root; a cgroup's ``pids.max`` where one with the pids controller is writable);
- namespaces, where ``unshare --user --net --pid`` works: no network but loopback, and
  its own process tree, so it cannot see or signal the evaluator;
- a different user (``nobody``) when the evaluator runs as root and that user can run the
  interpreter;
- at the end of every item, not only on timeout, its whole process tree is killed: by
  its cgroup v2 where one is writable, and always by its process group plus a sweep of
  the processes it orphaned (the evaluator is their ``PR_SET_CHILD_SUBREAPER`` on Linux).

Its stderr comes back through a pipe, read without blocking and only its last 4 KiB
kept; the error copied into the evidence is the exception's type, nothing else the
program printed. Without network isolation it refuses to run unless
``allow_network_unisolated`` (or ``TUNIX_CODE_EXEC_ALLOW_NETWORK_UNISOLATED=1``) says
the user accepts it. Items without tests are skipped and not counted. Exit status 0 is a
pass; ``pass_at_1`` is passes over items with tests (one completion per item).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.data.code import CODE_PROMPT, ENTRY_POINT, TEST, answer_code
from tunix_core.data.parse import parse_completion
from tunix_core.errors import ConfigError, DataError
from tunix_core.evaluation import binomial_stderr
from tunix_core.protocols import EvaluatorReport, Prediction, RunContext

FILE_SIZE_LIMIT = 16 * 1024 * 1024
PROCESS_LIMIT = 64  # processes a program may add to those its user already runs
ERROR_CHARS = 100  # of the exception type kept per item
STDERR_TAIL = 4096  # bytes of stderr kept (the rest is read and dropped)
POLL_S = 0.005
EMPTY_WAIT_S = 5.0  # for a killed cgroup to empty
ALLOW_NETWORK_VARIABLE = "TUNIX_CODE_EXEC_ALLOW_NETWORK_UNISOLATED"
# Own user, network, pid and mount namespaces; the program is the namespace's init, so
# every process it leaves dies with it, and --kill-child ties it to unshare.
ALL_NAMESPACES = ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child",
                  "--mount-proc")  # fmt: skip
NETWORK_ONLY = ("--user", "--map-root-user", "--net")
UNPRIVILEGED_UID = 65534  # nobody
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
TRACEBACK = "Traceback (most recent call last):"
# The last line of a traceback: an exception type, then ": " and its message, or nothing.
EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*)(?:: |$)")


@attrs.frozen
class Outcome:
    """How one program ended: ``status`` is ``passed``, ``failed`` (it raised or exited
    non-zero; a failed assertion is a failed test), ``timeout``, ``memory_limit`` or
    ``crashed`` (killed by a signal)."""

    status: str
    error: str | None
    seconds: float


@attrs.frozen
class Containment:
    """What this machine lets code-exec use: the ``unshare`` command line (empty where
    none works), whether that includes a pid namespace, a writable cgroup v2 folder to
    make one cgroup per item in, and the uid to run as (``None``: the evaluator's)."""

    unshare: tuple[str, ...] = ()
    pid_namespace: bool = False
    cgroup_parent: Path | None = None
    uid: int | None = None

    @property
    def network_isolated(self) -> bool:
        return bool(self.unshare)

    def describe(self) -> dict[str, Any]:
        return {"network_namespace": self.network_isolated, "pid_namespace": self.pid_namespace,
                "cgroup": self.cgroup_parent is not None,
                "user": "evaluator's" if self.uid is None else self.uid}  # fmt: skip


def _libc_prctl(option: int, value: int) -> bool:
    """``prctl(option, value)``; False where there is none (not Linux) or it fails."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0)) == 0


def _drop_to(uid: int | None) -> None:  # in the child, before exec
    if uid is not None:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def _join_cgroup(folder: Path | None) -> None:  # in the child, before exec
    if folder is not None:
        (folder / "cgroup.procs").write_text("0")


def _user_processes(uid: int) -> int:
    """How many processes ``uid`` runs (Linux: from /proc; 0 elsewhere)."""
    count = 0
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            count += entry.stat().st_uid == uid
    return count


def _limits(
    timeout_s: float, memory_mb: int, uid: int | None, cgroup: Path | None
) -> Callable[[], None]:
    memory = memory_mb * 1024 * 1024
    cpu = int(timeout_s) + 2  # a backstop only: wall time is what is enforced
    processes = _user_processes(os.getuid() if uid is None else uid) + PROCESS_LIMIT

    def apply() -> None:  # runs in the child, before exec
        _join_cgroup(cgroup)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        _drop_to(uid)

    return apply


def _starts(command: Sequence[str], preexec: Callable[[], None]) -> bool:
    try:
        probe = subprocess.run([*command, sys.executable, "-I", "-c", ""], env={},
                               cwd=tempfile.gettempdir(), capture_output=True, timeout=10,
                               preexec_fn=preexec)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def _cgroup_parent() -> Path | None:
    """This process's cgroup v2 folder, where it may make sub-cgroups (Linux)."""
    own = Path("/proc/self/cgroup")
    mounts = Path("/proc/self/mountinfo")
    if not (own.is_file() and mounts.is_file()):
        return None
    paths = [line[3:] for line in own.read_text().splitlines() if line.startswith("0::")]
    roots = [line.split(" - ")[0].split()[4] for line in mounts.read_text().splitlines()
             if " - cgroup2 " in line]  # fmt: skip
    if not paths or not roots:
        return None
    return Path(roots[0]) / paths[0].lstrip("/")


def probe_containment(*, namespaces: bool = True, cgroup: bool = True) -> Containment:
    """What works here: each part is tried by starting the interpreter under it.
    ``namespaces`` / ``cgroup`` False leave that part out (the fallbacks, e.g. to test)."""
    uid = None
    if os.geteuid() == 0 and _starts((), lambda: _drop_to(UNPRIVILEGED_UID)):
        uid = UNPRIVILEGED_UID
    unshare, pid_namespace = (), False
    command = shutil.which("unshare")
    if namespaces and command is not None:
        for flags in (ALL_NAMESPACES, NETWORK_ONLY):
            if _starts((command, *flags), lambda: _drop_to(uid)):
                unshare, pid_namespace = (command, *flags), flags is ALL_NAMESPACES
                break
    parent = _cgroup_parent() if cgroup else None
    if parent is not None:
        try:
            probe = Path(tempfile.mkdtemp(prefix="tunix-code-exec-probe-", dir=parent))
        except OSError:
            parent = None
        else:
            if not _starts((), lambda: _join_cgroup(probe)):
                parent = None
            with contextlib.suppress(OSError):
                probe.rmdir()
    return Containment(unshare, pid_namespace, parent, uid)


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


def exception_type(stderr: bytes) -> str | None:
    """The exception type that ends the last traceback in ``stderr`` (``AssertionError``),
    else None: only that goes into the evidence (at most ``ERROR_CHARS`` of
    letters, digits, ``_`` and ``.``), never other text the program printed."""
    lines = stderr.decode("utf-8", "replace").splitlines()
    starts = [n for n, line in enumerate(lines) if line.endswith(TRACEBACK)]
    if not starts:
        return None
    # After the last traceback's indented frames; its message may span lines.
    last = next((line for line in lines[starts[-1] + 1 :] if line and not line[0].isspace()), "")
    match = EXCEPTION_LINE.match(last)
    return match.group(1)[:ERROR_CHARS] if match else None


def signal_name(number: int) -> str:
    """``SIGKILL``, or ``signal 40`` for a number without a name."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _children(parent: int) -> set[int]:
    """Processes whose parent is ``parent`` (Linux: from /proc; none elsewhere)."""
    found = set()
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == parent:
                found.add(int(entry.name))
    return found


def _kill_cgroup(folder: Path) -> None:
    """Kill every process in the cgroup ``folder``, wait (a while) until it is empty and
    remove it."""
    deadline = time.monotonic() + EMPTY_WAIT_S
    while time.monotonic() < deadline:
        try:
            if "populated 0" in (folder / "cgroup.events").read_text().splitlines():
                break
            if (folder / "cgroup.kill").exists():
                (folder / "cgroup.kill").write_text("1")
            else:  # before Linux 5.14
                for pid in (folder / "cgroup.procs").read_text().split():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
        except OSError:
            break
        time.sleep(POLL_S)
    with contextlib.suppress(OSError):
        folder.rmdir()


@contextlib.contextmanager
def _guarding_the_evaluator() -> Iterator[None]:
    """While programs run (Linux): adopt the processes they orphan (a child that calls
    ``setsid()`` can still be found and killed), and be non-dumpable, so a program running
    as the same user cannot read ``/proc/<evaluator>/environ``."""
    adopting = _libc_prctl(PR_SET_CHILD_SUBREAPER, 1)
    hidden = _libc_prctl(PR_SET_DUMPABLE, 0)
    try:
        yield
    finally:
        if hidden:
            _libc_prctl(PR_SET_DUMPABLE, 1)
        if adopting:
            _libc_prctl(PR_SET_CHILD_SUBREAPER, 0)


@attrs.define
class _Running:
    process: subprocess.Popen[bytes]
    folder: Path
    cgroup: Path | None
    started: float
    stderr: bytearray = attrs.field(factory=bytearray)

    def read_stderr(self) -> None:
        """Whatever the pipe holds now, without waiting; only the last bytes are kept."""
        pipe = self.process.stderr
        assert pipe is not None
        while True:
            try:
                chunk = os.read(pipe.fileno(), 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.stderr += chunk
            del self.stderr[:-STDERR_TAIL]


class CodeExecEvaluator:
    """Runs answers against their items' tests, ``workers`` programs at a time.

    ``allow_network_unisolated`` (default: the environment variable
    ``TUNIX_CODE_EXEC_ALLOW_NETWORK_UNISOLATED=1``) lets it run where the network cannot
    be cut; ``namespaces`` / ``cgroup`` False turn those parts off (they are used where
    they work)."""

    name = "code-exec"

    def __init__(
        self,
        timeout_s: float = 10.0,
        memory_mb: int = 1024,
        workers: int = 2,
        *,
        allow_network_unisolated: bool | None = None,
        namespaces: bool = True,
        cgroup: bool = True,
    ) -> None:
        if timeout_s <= 0 or memory_mb <= 0 or workers < 1:
            raise ValueError("timeout_s and memory_mb must be > 0 and workers >= 1")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self.workers = workers
        if allow_network_unisolated is None:
            allow_network_unisolated = os.environ.get(ALLOW_NETWORK_VARIABLE) == "1"
        self.allow_network_unisolated = allow_network_unisolated
        self._probe_options = {"namespaces": namespaces, "cgroup": cgroup}
        self._containment: Containment | None = None
        self._items = itertools.count()
        self._own_children: set[int] = set()

    @property
    def containment(self) -> Containment:
        if self._containment is None:
            self._containment = probe_containment(**self._probe_options)
        return self._containment

    @property
    def network_isolated(self) -> bool:
        return self.containment.network_isolated

    def _start(self, program: str) -> _Running:
        box = self.containment
        path = Path(tempfile.mkdtemp(prefix="tunix-code-exec-"))
        cgroup = None
        if box.cgroup_parent is not None:
            cgroup = box.cgroup_parent / f"tunix-code-exec-{os.getpid()}-{next(self._items)}"
        try:
            (path / "program.py").write_text(program, encoding="utf-8")
            if cgroup is not None:
                cgroup.mkdir()
                with contextlib.suppress(OSError):  # without the pids controller: RLIMIT_NPROC
                    (cgroup / "pids.max").write_text(str(PROCESS_LIMIT))
            if box.uid is not None:
                os.chown(path, box.uid, box.uid)
            process = subprocess.Popen(
                [*box.unshare, sys.executable, "-I", "program.py"],
                cwd=path, env={}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, start_new_session=True,
                preexec_fn=_limits(self.timeout_s, self.memory_mb, box.uid, cgroup),
            )  # fmt: skip
        except BaseException:  # nothing is left of an item that did not start
            shutil.rmtree(path, ignore_errors=True)
            if cgroup is not None:
                with contextlib.suppress(OSError):
                    cgroup.rmdir()
            raise
        assert process.stderr is not None
        os.set_blocking(process.stderr.fileno(), False)
        return _Running(process, path, cgroup, time.monotonic())

    def _end_tree(self, job: _Running, running: Mapping[int, _Running]) -> None:
        """Kill every process ``job`` started, wherever it went, and reap them."""
        if job.cgroup is not None:
            _kill_cgroup(job.cgroup)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.process.pid, signal.SIGKILL)
        job.process.wait()
        # What left the group (setsid) and outlived its parent is now ours (subreaper); the
        # orphans of a sibling still running are killed early too.
        keep = self._own_children | {other.process.pid for other in running.values()}
        for _ in range(1000):  # a bound only: RLIMIT_NPROC bounds what can be forked
            orphans = _children(os.getpid()) - keep
            if not orphans:
                break
            for pid in orphans:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for pid in orphans:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)

    def _finish(self, job: _Running, timed_out: bool, running: Mapping[int, _Running]) -> Outcome:
        self._end_tree(job, running)
        code = job.process.returncode
        seconds = round(time.monotonic() - job.started, 3)
        job.read_stderr()
        assert job.process.stderr is not None
        job.process.stderr.close()
        shutil.rmtree(job.folder, ignore_errors=True)
        error = exception_type(bytes(job.stderr))
        if timed_out or code == -signal.SIGXCPU:
            return Outcome("timeout", f"ran over {self.timeout_s:g} s", seconds)
        if code == 0:
            return Outcome("passed", None, seconds)
        if error == "MemoryError":
            return Outcome("memory_limit", error, seconds)
        if code < 0:
            return Outcome("crashed", f"killed by {signal_name(-code)}", seconds)
        return Outcome("failed", error or f"exit status {code}", seconds)

    def run_programs(self, programs: Sequence[str]) -> list[Outcome]:
        """Run each program under the limits; outcomes in the same order."""
        outcomes: list[Outcome | None] = [None] * len(programs)
        waiting = list(enumerate(programs))[::-1]
        running: dict[int, _Running] = {}
        with _guarding_the_evaluator():
            self._own_children = _children(os.getpid())
            try:
                while waiting or running:
                    while waiting and len(running) < self.workers:
                        index, program = waiting.pop()
                        running[index] = self._start(program)
                    time.sleep(POLL_S)
                    now = time.monotonic()
                    for index, job in list(running.items()):
                        job.read_stderr()
                        ended = job.process.poll() is not None
                        overdue = not ended and now - job.started > self.timeout_s
                        if ended or overdue:
                            del running[index]  # before finishing: it is never finished twice
                            outcomes[index] = self._finish(job, overdue, running)
            finally:
                while running:  # interrupted: leave no program behind
                    _, job = running.popitem()
                    self._finish(job, True, running)
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
        if tested and not self.network_isolated and not self.allow_network_unisolated:
            raise ConfigError(
                "code-exec: the network cannot be cut here (`unshare --user --net` does not "
                "work), so model-written code would run with your network; set "
                f"{ALLOW_NETWORK_VARIABLE}=1 to accept that (docs/evaluation.md)"
            )
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
            "containment": self.containment.describe() if n else None,
            "seconds": round(time.monotonic() - started, 3),
        }
