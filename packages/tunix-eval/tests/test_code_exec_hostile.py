"""``code-exec`` against hostile answer code: each program ends as one item with a reason,
leaves no process and no temporary folder behind, cannot reach the evaluator, and puts
none of its output into the evidence. Each case runs under every containment this
machine offers and under the fallback (process group plus subreaper, no namespaces, no
cgroup), which is what a machine without ``unshare`` and cgroups gets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tunix_core.errors import ConfigError
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.code_exec import (
    ALLOW_NETWORK_VARIABLE,
    CodeExecEvaluator,
    exception_type,
    probe_containment,
    signal_name,
)

HERE = probe_containment()
MODES: dict[str, dict[str, Any]] = {
    # Whatever works here; where the network cannot be cut, run anyway (the refusal has
    # its own test).
    "best": {"allow_network_unisolated": True},
    "fallback": {"namespaces": False, "cgroup": False, "allow_network_unisolated": True},
}
TEST = "def check(candidate):\n    assert candidate(1) == 2\n"
GOOD = "def inc(x):\n    return x + 1\n"


def item(item_id: str, code: str) -> Prediction:
    return Prediction(item_id, "", f"<answer>{code}</answer>", "",
                      {"test": TEST, "entry_point": "inc"})  # fmt: skip


def evaluate(mode: str, *codes: str) -> list[dict[str, Any]]:
    """Each code as an item, then a good one (the evaluation goes on); per-item scores."""
    predictions = [item(f"i{n}", code) for n, code in enumerate([*codes, GOOD])]
    report = CodeExecEvaluator(**MODES[mode]).evaluate(predictions,
                                                       context=RunContext(get_host()))  # fmt: skip
    scores = [dict(report.per_item[p.id]) for p in predictions]
    assert scores[-1]["outcome"] == "passed"
    return scores[:-1]


def processes_with(token: str) -> list[str]:
    """Command lines of live processes that carry ``token``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if token in command and state != "Z":
            found.append(command)
    return found


@pytest.fixture(autouse=True)
def own_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Programs' folders go under tmp_path/tmp, which must end empty."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("replacement", ["deleted", "folder", "fifo"])
def test_tampering_with_files_in_its_folder_fails_only_its_item(
    mode: str, replacement: str
) -> None:
    # Its stderr once was stderr.txt there: a FIFO in its place hung the evaluation.
    make = {"deleted": "pass", "folder": "os.mkdir(name)", "fifo": "os.mkfifo(name)"}[replacement]
    code = ("import os, sys\n"
            "name = 'stderr.txt'\n"
            "os.remove(name) if os.path.exists(name) else None\n"
            f"{make}\n"
            "sys.stderr.write('lost\\n')\n"
            "raise RuntimeError('tampered')\n")  # fmt: skip
    [score] = evaluate(mode, code)
    assert (score["outcome"], score["error"]) == ("failed", "RuntimeError")


@pytest.mark.parametrize("mode", MODES)
def test_a_signal_without_a_name_is_a_crash_with_its_number(mode: str) -> None:
    # signal.Signals(40) raised, and the cleanup ran twice. os.kill(0, ...) signals the
    # program's process group (in a pid namespace the program itself ignores signals).
    [score] = evaluate(mode, "import os\nos.kill(0, 40)\nimport time\ntime.sleep(30)\n")
    assert (score["outcome"], score["error"]) == ("crashed", "killed by signal 40")
    assert signal_name(9) == "SIGKILL" and signal_name(40) == "signal 40"


def test_a_signal_to_itself_without_namespaces_too() -> None:
    [score] = evaluate("fallback", "import os\nos.kill(os.getpid(), 40)\n")
    assert (score["outcome"], score["error"]) == ("crashed", "killed by signal 40")


@pytest.mark.parametrize("mode", MODES)
def test_no_process_it_started_outlives_its_item(mode: str) -> None:
    token = f"{uuid.uuid4().int % 10**6}.5"  # a sleep length no other process uses
    code = ("import os, subprocess\n"
            f"subprocess.Popen(['sleep', '{token}'])\n"
            f"subprocess.Popen(['sleep', '{token}'], start_new_session=True)\n"
            "if os.fork() == 0:  # a new session whose own child is orphaned at once\n"
            "    os.setsid()\n"
            f"    subprocess.Popen(['sleep', '{token}'])\n"
            "    os._exit(0)\n"
            "os.wait()\n")  # fmt: skip
    code += GOOD
    [score] = evaluate(mode, code)
    assert score["outcome"] == "passed"  # it ended by itself: no timeout involved
    assert processes_with(f"sleep {token}") == []


def test_the_timeout_kills_a_process_that_left_the_session() -> None:
    token = f"{uuid.uuid4().int % 10**6}.25"
    code = ("import subprocess\n"
            f"subprocess.Popen(['sleep', '{token}'], start_new_session=True)\n"
            "while True:\n    pass\n")  # fmt: skip
    predictions = [item("i0", code)]
    evaluator = CodeExecEvaluator(timeout_s=1.0, **MODES["fallback"])
    report = evaluator.evaluate(predictions, context=RunContext(get_host()))
    assert report.per_item["i0"]["outcome"] == "timeout"
    assert processes_with(f"sleep {token}") == []


@pytest.mark.parametrize("mode", MODES)
def test_what_it_prints_does_not_reach_the_evidence(mode: str) -> None:
    leak = ("import sys\n"
            "sys.stderr.write(open('/etc/passwd').read() + '\\x1b[31mred\\x07\\n')\n")  # fmt: skip
    raised = leak + "raise RuntimeError(open('/etc/passwd').read())\n"
    exited = leak + "raise SystemExit(3)\n"
    fake = leak + "sys.stderr.write('Traceback (most recent call last):\\nroot:x:0:0\\n')\n"
    fake += "raise SystemExit(4)\n"
    scores = evaluate(mode, raised, exited, fake)
    assert [score["error"] for score in scores] == ["RuntimeError", "exit status 3",
                                                    "exit status 4"]  # fmt: skip
    assert exception_type(b"Traceback (most recent call last):\n" + b"A" * 500) == "A" * 100


@pytest.mark.skipif(not HERE.pid_namespace,
                    reason="needs `unshare --user --net --pid` (not permitted here)")  # fmt: skip
def test_in_its_namespaces_it_cannot_reach_the_evaluator(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"tunix-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("TUNIX_TEST_SECRET", secret)
    code = ("import os\n"
            "seen = []\n"
            "for entry in os.listdir('/proc'):\n"
            "    try:\n"
            f"        seen += [entry] if b'{secret}' in open(f'/proc/{{entry}}/environ', 'rb').read() else []\n"
            "    except OSError:\n"
            "        pass\n"
            "assert not seen, 'read the environment'\n"
            "assert os.getppid() == 0, 'sees its parent'\n")  # fmt: skip
    code += GOOD
    assert evaluate("best", code)[0]["outcome"] == "passed"
    # Killing "its parent" (pid 0: its own group) ends its item, not the evaluation.
    [score] = evaluate("best", "import os\nos.kill(os.getppid(), 9)\n")
    assert score["outcome"] == "crashed"


# This venv's interpreter may be one `nobody` cannot run (here it is under /root): the
# distribution's interpreter of the same version, with this venv's packages, runs the
# evaluator as root and drops to `nobody`.
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
AS_NOBODY = """
import json, site, sys
site.addsitedir(sys.argv[1])
from tunix_eval.code_exec import CodeExecEvaluator
options = json.loads(sys.argv[2])
evaluator = CodeExecEvaluator(**options)
outcomes = evaluator.run_programs(json.loads(sys.argv[3]))
print(json.dumps([evaluator.containment.uid, [[o.status, o.error] for o in outcomes]]))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON.is_file(),
                    reason=f"needs root and {SYSTEM_PYTHON}")  # fmt: skip
@pytest.mark.parametrize("mode", MODES)
def test_as_root_it_runs_as_nobody_under_a_process_limit(mode: str) -> None:
    folder = Path(tempfile.mkdtemp(dir="/tmp"))  # others may enter it: only the file is closed
    folder.chmod(0o755)
    (folder / "root-only").write_text("secret")
    (folder / "root-only").chmod(0o600)
    unreachable = ("import os\n"
                   "ppid, reached = os.getppid(), []\n"
                   "for attempt in (lambda: os.kill(ppid, 0),\n"
                   "                lambda: open(f'/proc/{ppid}/environ', 'rb').read()):\n"
                   "    try:\n"
                   "        reached += [attempt()] if ppid else []\n"
                   "    except PermissionError:\n"
                   "        pass\n"
                   "assert not reached\n")  # fmt: skip
    programs = [f"open({str(folder / 'root-only')!r}).read()\n",
                "import os, time\nfor n in range(300):\n    if os.fork() == 0:\n"
                "        time.sleep(30)\n        os._exit(0)\n",
                unreachable]  # fmt: skip
    options = MODES[mode]
    site = Path(pytest.__file__).parents[1]  # this venv's site-packages
    try:
        done = subprocess.run([str(SYSTEM_PYTHON), "-I", "-c", AS_NOBODY, str(site),
                               json.dumps(options), json.dumps(programs)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        shutil.rmtree(folder)
    assert done.returncode == 0, done.stderr
    uid, outcomes = json.loads(done.stdout)
    assert uid == 65534
    assert outcomes == [["failed", "PermissionError"], ["failed", "BlockingIOError"],
                        ["passed", None]]  # fmt: skip


@pytest.mark.skipif(os.geteuid() == 0 and HERE.uid is None,
                    reason="RLIMIT_NPROC does not bind root, and `nobody` cannot run this "
                           "interpreter (test_as_root_it_runs_as_nobody_under_a_process_limit "
                           "runs the system one)")  # fmt: skip
def test_the_process_count_is_limited() -> None:
    code = ("import os, time\n"
            "for n in range(300):\n"
            "    if os.fork() == 0:\n"
            "        time.sleep(30)\n"
            "        os._exit(0)\n")  # fmt: skip
    [score] = evaluate("best", code)
    assert (score["outcome"], score["error"]) == ("failed", "BlockingIOError")


def test_without_network_isolation_it_refuses_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ALLOW_NETWORK_VARIABLE, raising=False)
    refused = CodeExecEvaluator(namespaces=False)
    with pytest.raises(ConfigError, match=f"set {ALLOW_NETWORK_VARIABLE}=1 to accept"):
        refused.evaluate([item("i0", GOOD)], context=RunContext(get_host()))
    monkeypatch.setenv(ALLOW_NETWORK_VARIABLE, "1")
    report = CodeExecEvaluator(namespaces=False).evaluate([item("i0", GOOD)],
                                                          context=RunContext(get_host()))  # fmt: skip
    assert report.metrics["passed"] == 1 and report.metrics["network_isolated"] is False
    assert report.metrics["containment"]["network_namespace"] is False
