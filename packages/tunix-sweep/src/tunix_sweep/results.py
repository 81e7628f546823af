"""A sweep's results from its study: ``summary.json`` (the leaderboard both backends
write), the leaderboard as text, and the optimisation-history and parameter-importance
plots."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tunix_core.errors import TunixError
from tunix_core.jsonio import write_json_atomic
from tunix_sweep import study as studies

HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"
BACKENDS = ("local", "ray")


def _row(trial: FrozenTrial, sweep_dir: Path) -> dict[str, Any]:
    run_dir = studies.trial_run_dir(trial, sweep_dir)
    return {
        "trial": trial.number,
        "state": trial.state.name.lower(),
        "params": trial.params,
        "value": trial.value if trial.state == TrialState.COMPLETE else None,  # a pruned
        # trial's value in Optuna is its last intermediate value, not the objective
        "seconds": studies.trial_seconds(trial),
        "steps_reported": len(trial.intermediate_values),
        "run_dir": None if run_dir is None else str(run_dir),
        "retry_of": trial.user_attrs.get(studies.RETRY_OF),
        "interrupted": bool(trial.user_attrs.get(studies.INTERRUPTED)),
        "error": trial.user_attrs.get(studies.ERROR),
    }


def leaderboard(study: optuna.Study, sweep_dir: Path) -> list[dict[str, Any]]:
    """Every trial: completed ones best objective first, then the rest by number."""
    trials = study.get_trials(deepcopy=False)
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    complete.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
    rest = sorted((t for t in trials if t not in complete), key=lambda t: t.number)
    return [_row(t, sweep_dir) for t in [*complete, *rest]]


def summary(study: optuna.Study, sweep_dir: Path, definition: dict[str, Any], *, backend: str,
            planned: int) -> dict[str, Any]:  # fmt: skip
    rows = leaderboard(study, sweep_dir)
    best = rows[0] if rows and rows[0]["state"] == "complete" else None
    return {
        "sweep": study.study_name,
        "backend": backend,
        "objective": definition["objective"],
        "direction": definition["direction"],
        "space": definition["space"],
        "trials_planned": planned,
        "trials_counted": studies.counted(study),
        "best": best,
        "trials": rows,
    }


def write_summary(study: optuna.Study, sweep_dir: Path, definition: dict[str, Any], *,
                  backend: str, planned: int) -> dict[str, Any]:  # fmt: skip
    """Rewrite ``summary.json`` from the study; returns what it wrote."""
    data = summary(study, sweep_dir, definition, backend=backend, planned=planned)
    write_json_atomic(sweep_dir / studies.SUMMARY, data)
    return data


def read_summary(sweep_dir: Path) -> dict[str, Any]:
    """What ``tunix sweep show`` keeps of the last ``summary.json`` (the backend and the
    planned trials; the rest it rewrites from the study): {} when there is none, one
    TunixError naming the file when it is damaged."""
    path = sweep_dir / studies.SUMMARY
    if not path.exists():
        return {}
    data = studies.read_json_object(path)
    planned = data.get("trials_planned")
    if data.get("backend") not in BACKENDS:
        problem = f"backend: must be one of {', '.join(BACKENDS)}"
    elif isinstance(planned, bool) or not isinstance(planned, int) or planned < 1:
        problem = "trials_planned: must be a whole number >= 1"
    else:
        return {"backend": data["backend"], "trials_planned": planned}
    raise TunixError(f"{path}: not a sweep summary: {problem}; delete it, and `tunix sweep "
                     "show` writes it again from study.db")  # fmt: skip


def format_leaderboard(data: dict[str, Any]) -> str:
    """The summary as a table: rank, trial, state, objective, time, parameters."""
    header = ("#", "trial", "state", data["objective"], "time", *data["space"])
    table = [header]
    rank = 0
    for row in data["trials"]:
        ranked = row["state"] == "complete"
        rank += ranked
        value = "-" if row["value"] is None else f"{row['value']:.4f}"
        seconds = "-" if row["seconds"] is None else f"{row['seconds']:.0f}s"
        params = [_param(row["params"].get(name)) for name in data["space"]]
        table.append((str(rank) if ranked else "-", str(row["trial"]), row["state"], value,
                      seconds, *params))  # fmt: skip
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    best = data["best"]
    lines.append("")
    if best is None:
        lines.append(f"sweep {data['sweep']}: no completed trial yet")
    else:
        lines.append(f"best: trial {best['trial']}, {data['objective']} = {best['value']:.4f} "
                     f"({data['direction']}), run {best['run_dir']}")  # fmt: skip
    return "\n".join(lines)


def _param(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def write_plots(study: optuna.Study, out: Path) -> tuple[Path | None, Path | None, list[str]]:
    """The optimisation history and the parameter importances as PNG files in ``out``;
    each is None (with a note why) when the study cannot make it yet."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    from matplotlib import pyplot as plt

    notes: list[str] = []
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if t.value is not None and math.isfinite(t.value)]  # fmt: skip
    if not complete:
        return None, None, ["no completed trial: nothing to plot"]
    maximise = study.direction == optuna.study.StudyDirection.MAXIMIZE
    numbers = [t.number for t in complete]
    values = [float(t.value or 0.0) for t in complete]
    best_so_far = [max(values[: i + 1]) if maximise else min(values[: i + 1]) for i in range(len(values))]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(numbers, values, "o", label="trial")
    axes.step(numbers, best_so_far, where="post", label="best so far")
    axes.set(xlabel="trial", ylabel="objective", title=f"{study.study_name}: optimisation history")
    axes.legend()
    figure.tight_layout()
    history = out / HISTORY_PLOT
    figure.savefig(history, dpi=100)
    plt.close(figure)

    importance: Path | None = None
    try:
        with warnings.catch_warnings():  # the evaluator is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            scores = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()
            )
    except (ValueError, RuntimeError) as exc:
        scores, why = {}, str(exc)
    else:
        why = "the completed trials do not vary their parameters"
    if scores and all(math.isfinite(v) for v in scores.values()):
        figure, axes = plt.subplots(figsize=(7, 1.5 + 0.4 * len(scores)))
        names = list(scores)[::-1]
        axes.barh(names, [scores[n] for n in names])
        axes.set(xlabel="importance (PED-ANOVA)", title=f"{study.study_name}: parameter importances")
        figure.tight_layout()
        importance = out / IMPORTANCE_PLOT
        figure.savefig(importance, dpi=100)
        plt.close(figure)
    else:
        notes.append(f"no importance plot: {why}")
    return history, importance, notes
