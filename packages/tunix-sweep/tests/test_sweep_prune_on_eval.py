"""The tiny sweep pruning on an evaluation taken during training: each trial's run
evaluates the ood split every 2 steps, and the values the study records for a trial (what
its pruner reads) are those evaluations' accuracies at the steps evaluated, not the
training loss of every step. That the pruner stops a trial on them is test_prune_on.py's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import yaml

from tunix_core.layout import RunLayout

EVERY = 2
STEPS = 3


def test_the_study_records_each_trials_eval_accuracy_at_the_steps_evaluated(
    tmp_path: Path, tunix: Any, sweep_file: Path
):
    tiny = yaml.safe_load(sweep_file.read_text())  # the tiny sweep of conftest.py
    base = tiny["base"]
    base["training"]["steps"] = STEPS
    base["eval"] = {**base["eval"], "baseline": False,
                    "during_training": {"every": EVERY, "split": "ood", "limit": 2}}  # fmt: skip
    spec: dict[str, Any] = {**tiny, "name": "tiny-eval", "base": base, "trials": 2,
                            "prune_on": "eval/ood_accuracy", "pruner_startup_trials": 1,
                            "pruner_warmup_steps": 0}  # fmt: skip
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    sweep_dir = tmp_path / "sweeps" / "tiny-eval"
    result = tunix(tmp_path, "sweep", "-c", str(path), "--out", str(sweep_dir))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    study = optuna.load_study(study_name="tiny-eval", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    assert len(study.trials) == 2
    for trial in study.trials:
        run = RunLayout(sweep_dir / trial.user_attrs["run_dir"])
        metrics = [json.loads(line) for line in run.metrics_path.read_text().splitlines()]
        evaluated = {m["step"]: m["eval/ood_accuracy"] for m in metrics if "eval/ood_accuracy" in m}
        assert sorted(evaluated) == [EVERY]  # steps 1 and 3 are not evaluated
        # Both maximised: the study holds the accuracies as they are, and no loss.
        assert trial.intermediate_values == evaluated
        assert all(m["loss"] not in trial.intermediate_values.values() for m in metrics)
    summary = json.loads((sweep_dir / "summary.json").read_text())
    assert [row["steps_reported"] for row in summary["trials"]] == [1, 1]
