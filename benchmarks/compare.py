"""Side-by-side speed of tunix and google-tunix on the same works, shapes and device.

    python benchmarks/compare.py --peer-python PATH [--suite cpu|accelerator]
                                 [--work NAME ...] [--order tunix-first|peer-first]
                                 [--out FILE]

Each side of each work runs in a fresh process of its own (``tunix_side.py`` with this
interpreter, ``peer_side.py`` with ``--peer-python``, an environment holding
google-tunix), one at a time. For each work one JSON line is printed and appended to
``--out``: both sides' figures, and ``ratio`` (tunix's tokens/s over google-tunix's:
above 1 means tunix is faster) plus the ratios of the first call and of loading
(google-tunix's seconds over tunix's). ``nox -s bench`` builds both environments and runs
this. The suite picks the shapes: ``cpu`` (Gemma 3 270M, f32) or ``accelerator``
(Gemma 3 1B, bf16); by default the one that fits the device JAX finds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from works import SUITES  # noqa: E402

SIDES = {"tunix": "tunix_side.py", "google-tunix": "peer_side.py"}


def run_side(python: str, side: str, suite: str, work: str, timeout: float) -> dict[str, Any]:
    """One side of one work in a fresh process: its JSON line, or the reason it failed."""
    command = [python, str(HERE / SIDES[side]), suite, work]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return {"error": f"exit {done.returncode}: {tail}"}
    measured: dict[str, Any] = json.loads(lines[-1])["figures"]
    return measured


def ratios(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, float]:
    """Above 1 means tunix is better: throughput ours/peer, seconds peer/ours."""
    result = {}
    if ours.get("tokens_per_s") and peer.get("tokens_per_s"):
        result["ratio"] = round(ours["tokens_per_s"] / peer["tokens_per_s"], 3)
    for seconds in ("first_step_s", "first_call_s", "load_s"):
        if ours.get(seconds) and peer.get(seconds):
            result[f"{seconds}_ratio"] = round(peer[seconds] / ours[seconds], 3)
    return result


def default_suite() -> str:
    """``accelerator`` when JAX finds a GPU or TPU, else ``cpu`` (asked in a subprocess,
    so this process never holds the device the sides need)."""
    probe = "import jax; print(jax.devices()[0].platform)"
    platform = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              check=False).stdout.strip()  # fmt: skip
    return "cpu" if platform in ("cpu", "") else "accelerator"


def git_commit() -> str | None:
    """The commit measured, ``-dirty`` when the working tree has changes."""
    done = subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-python", required=True, help="python of an environment with google-tunix")
    parser.add_argument("--suite", choices=sorted(SUITES), default=None)
    parser.add_argument("--work", action="append", default=None, help="a work of the suite (repeatable)")
    parser.add_argument("--order", choices=["tunix-first", "peer-first"], default="tunix-first")
    parser.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    parser.add_argument("--label", default=None, help="a note stored with each line (e.g. 'before')")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per side")
    args = parser.parse_args(argv)

    if not Path(args.peer_python).is_file():
        parser.error(f"--peer-python: {args.peer_python} is not a file")
    suite = args.suite or default_suite()
    names = args.work or [w.name for w in SUITES[suite]]
    known = {w.name for w in SUITES[suite]}
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"--work: {', '.join(unknown)} not in suite {suite} ({', '.join(sorted(known))})")
    order = ["tunix", "google-tunix"] if args.order == "tunix-first" else ["google-tunix", "tunix"]
    pythons = {"tunix": sys.executable, "google-tunix": args.peer_python}

    failed = False
    for name in names:
        measured = {}
        for side in order:
            print(f"[{name}] {side} ...", file=sys.stderr, flush=True)
            measured[side] = run_side(pythons[side], side, suite, name, args.timeout)
        line = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "commit": git_commit(),
            "label": args.label,
            "suite": suite,
            "work": name,
            "order": args.order,
            "host_cpus": os.cpu_count(),
            "tunix": measured["tunix"],
            "google-tunix": measured["google-tunix"],
            **ratios(measured["tunix"], measured["google-tunix"]),
        }
        failed = failed or any("error" in m for m in measured.values())
        text = json.dumps(line)
        print(text, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a", encoding="utf-8") as out:
            out.write(text + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
