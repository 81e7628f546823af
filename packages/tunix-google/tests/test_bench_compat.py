"""``benchmarks/compare.py``'s google-tunix side trains with the ``google-tunix-sft``
trainer's own code (``tunix_google.sft``): the tiny suite's LoRA and full fine-tune rows,
both sides in this environment (the nox session ``compat`` holds google-tunix, qwix and
the tunix packages, as ``nox -s bench``'s google-tunix environment does)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat

COMPARE = Path(__file__).resolve().parents[3] / "benchmarks" / "compare.py"


def test_the_benchmarks_google_tunix_train_rows_run_the_google_tunix_sft_trainer(tmp_path: Path):
    out = tmp_path / "results.jsonl"
    command = [sys.executable, str(COMPARE), "--peer-python", sys.executable,
               "--suite", "tiny", "--out", str(out)]  # fmt: skip
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["work"] for line in lines] == ["train-lora", "train-full"]
    for line in lines:
        peer = line["google-tunix"]
        assert peer["code_path"] == "tunix_google.sft (google-tunix-sft)", line
        assert peer["google_tunix"] == "0.1.7"
        assert peer["tokens_per_s"] > 0 and math.isfinite(peer["loss"]), line
        assert line["ratio"] > 0 and "code_path" not in line["tunix"]
