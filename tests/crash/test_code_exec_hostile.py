"""`tunix eval --evaluator code-exec` on a predictions file of hostile answers (every
attack of docs/evaluation.md's code-exec section): each ends as one item with a reason,
the evaluation completes, no process an answer started survives its item, nothing
outside the programs' temporary folders changes, and no output of theirs reaches the
evidence. The `crash` nox session runs this; the fallback without namespaces and cgroups
is run in-process on the attacks it contains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_eval.code_exec import CodeExecEvaluator, probe_containment

HERE = probe_containment()
TEST = "def check(candidate):\n    assert candidate(1) == 2\n"
GOOD = "def inc(x):\n    return x + 1\n"
SECRET = f"tunix-secret-{uuid.uuid4().hex}"
TOKEN = f"{uuid.uuid4().int % 10**6}.75"  # the sleep length of every process answers start


def attacks(marker: Path) -> dict[str, tuple[str, str, str | None]]:
    """Answer code by name, with the outcome and error it must end with (``None``: any)."""
    survive = ("import os, subprocess, sys\n"
               f"subprocess.Popen(['sleep', '{TOKEN}'])\n"
               f"subprocess.Popen(['sleep', '{TOKEN}'], start_new_session=True)\n"
               "if os.fork() == 0:  # leaves the session, then writes outside after a while\n"
               "    os.setsid()\n"
               f"    subprocess.Popen(['sleep', '{TOKEN}'])\n"
               f"    os.execv('/bin/sh', ['sh', '-c', 'sleep 1 && touch {marker}', '{TOKEN}'])\n"
               "for _ in range(50):  # many processes\n"
               "    if os.fork() == 0:\n"
               f"        os.execv('/bin/sleep', ['sleep', '{TOKEN}'])\n")  # fmt: skip
    return {
        "stderr-fifo": ("import os\n"
                        "os.remove('stderr.txt') if os.path.exists('stderr.txt') else None\n"
                        "os.mkfifo('stderr.txt')\nos.mkfifo('stdout.txt')\nos.mkdir('x')\n"
                        "raise RuntimeError\n", "failed", "RuntimeError"),
        "signal-40": ("import os, time\nos.kill(os.getpid(), 40)\nos.kill(0, 40)\n"
                      "time.sleep(30)\n", "crashed", "killed by signal 40"),
        "survivors": (survive + GOOD, "passed", None),
        "setsid-timeout": ("import subprocess\n"
                           f"subprocess.Popen(['sleep', '{TOKEN}'], start_new_session=True)\n"
                           "while True:\n    pass\n", "timeout", None),
        "stderr-leak": ("import sys\nsys.stderr.write(open('/etc/passwd').read() + '\\x1b[2J')\n"
                        "raise RuntimeError(open('/etc/passwd').read())\n",
                        "failed", "RuntimeError"),
        "environment": ("import os\nfor e in os.listdir('/proc'):\n    try:\n"
                        f"        assert b'{SECRET}' not in open(f'/proc/{{e}}/environ', 'rb').read()\n"
                        "    except OSError:\n        pass\n" + GOOD, "passed", None),
        "network": ("import socket\n"
                    "assert [n for _, n in socket.if_nameindex()] == ['lo']\n" + GOOD,
                    "passed", None),
        "kill-parent": ("import os, time\nos.kill(os.getppid(), 9)\ntime.sleep(30)\n",
                        "crashed", None),
        "good": (GOOD, "passed", None),
    }  # fmt: skip


def record(name: str, code: str) -> dict[str, Any]:
    return {"id": name, "completion": f"<answer>{code}</answer>", "expected": "",
            "meta": {"test": TEST, "entry_point": "inc"}}  # fmt: skip


def live(token: str) -> list[str]:
    """Command lines of live (not zombie) processes that carry ``token``."""
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


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*") if path.is_file()}  # fmt: skip


@pytest.mark.skipif(not HERE.pid_namespace,
                    reason="needs `unshare --user --net --pid`: without it the network and "
                           "the evaluator are not contained (test_fallback_contains covers "
                           "the rest)")  # fmt: skip
def test_hostile_answers_under_tunix_eval(tmp_path: Path) -> None:
    watched, temp, out = tmp_path / "watched", tmp_path / "tmp", tmp_path / "out"
    watched.mkdir()
    temp.mkdir()
    (watched / "keep.txt").write_text("unchanged")
    cases = attacks(watched / "marker")
    predictions = watched / "hostile.jsonl"
    predictions.write_text("".join(json.dumps(record(name, code)) + "\n"
                                   for name, (code, _, _) in cases.items()))  # fmt: skip
    before = snapshot(watched)
    env = {**os.environ, "TMPDIR": str(temp), "TUNIX_HOSTILE_SECRET": SECRET}
    tunix = Path(sys.executable).with_name("tunix")
    done = subprocess.run([str(tunix), "eval", "--predictions", str(predictions), "--out",
                           str(out), "--evaluator", "code-exec", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)["evaluators"]["code-exec"]
    assert metrics["n"] == len(cases) and metrics["network_isolated"] is True
    scores = {}
    for line in (out / "predictions.jsonl").read_text().splitlines():
        row = json.loads(line)
        scores[row["id"]] = row["scores"]["code-exec"]
    for name, (_, status, error) in cases.items():
        assert scores[name]["outcome"] == status, (name, scores[name])
        if error is not None:
            assert scores[name]["error"] == error, (name, scores[name])
    assert live(TOKEN) == []
    assert list(temp.iterdir()) == []
    assert snapshot(watched) == before
    evidence = "".join(path.read_text() for path in out.rglob("*") if path.is_file())
    assert "root:x:0:0" not in evidence and "\x1b" not in evidence and "\\u001b" not in evidence


def test_fallback_contains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without namespaces or cgroups: process group, subreaper sweep, pipes, redaction."""
    watched, temp = tmp_path / "watched", tmp_path / "tmp"
    watched.mkdir()
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    cases = attacks(watched / "marker")
    for uncontained in ("environment", "network", "kill-parent"):
        del cases[uncontained]
    predictions = [Prediction(name, "", f"<answer>{code}</answer>", "",
                              {"test": TEST, "entry_point": "inc"})
                   for name, (code, _, _) in cases.items()]  # fmt: skip
    evaluator = CodeExecEvaluator(namespaces=False, cgroup=False, allow_network_unisolated=True)
    report = evaluator.evaluate(predictions, context=RunContext(get_host()))
    for name, (_, status, error) in cases.items():
        assert report.per_item[name]["outcome"] == status, (name, report.per_item[name])
        assert error is None or report.per_item[name]["error"] == error
    assert live(TOKEN) == []
    assert list(temp.iterdir()) == [] and list(watched.iterdir()) == []
