"""The Optuna study of a sweep folder, shared by the local and the Ray backends.

A sweep folder holds ``study.db`` (the SQLite study: every trial's parameters, state,
intermediate values and objective), ``sweep.json`` (the search it was started with),
``trials/NNNN/`` (each trial's config, progress and output) and ``runs/`` (the trials'
run directories), plus ``summary.json`` and the plots once written.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from tunix_core.errors import ConfigError, TunixError
from tunix_core.jsonio import write_json_atomic
from tunix_core.layout import RunLayout
from tunix_sweep.spec import DIRECTIONS, MAX_SEED, ParamSpec, Sweep, SweepSpec
from tunix_sweep.trial import TRIALS, trial_dir

STUDY_DB = "study.db"
DEFINITION = "sweep.json"
RUNS = "runs"
SUMMARY = "summary.json"

# Trial user attributes.
RUN_DIR = "run_dir"
RETRY_OF = "retry_of"  # the number of the killed trial this one continues
INTERRUPTED = "interrupted"  # RUNNING when its sweep died; failed, and retried
ALIVE_SECONDS = "alive_seconds"  # an interrupted trial's time until its last output
ERROR = "error"
# Study user attribute: the search (sweep.json's content) the study was started with, so
# that a folder whose sweep.json was deleted or edited still refuses another search.
SEARCH = "sweep_definition"
SQLITE_HEADER = b"SQLite format 3\x00"

ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def storage_url(sweep_dir: Path) -> str:
    return f"sqlite:///{(sweep_dir / STUDY_DB).resolve()}"


def _reason(exc: BaseException) -> str:
    """The first line of an error, without SQLAlchemy's ``(sqlite3.X)`` prefix."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


@contextmanager
def reading_study(sweep_dir: Path) -> Iterator[None]:
    """Turn what a damaged ``study.db`` raises while it is read (SQLite's errors, records
    Optuna cannot decode) into one TunixError naming the file."""
    try:
        yield
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ValueError,
            LookupError, TypeError, RuntimeError) as exc:  # fmt: skip
        raise TunixError(f"{sweep_dir / STUDY_DB}: cannot read the study ({_reason(exc)}); "
                         "restore it from a copy, or give --out a new folder") from None  # fmt: skip


def open_storage(sweep_dir: Path) -> optuna.storages.RDBStorage:
    """The folder's study storage. An existing ``study.db`` must be an SQLite file: Optuna
    would otherwise write its tables into whatever is there."""
    path = sweep_dir / STUDY_DB
    if path.exists():
        try:
            with path.open("rb") as handle:
                header = handle.read(len(SQLITE_HEADER))
        except OSError as exc:
            raise TunixError(f"{path}: cannot read the study ({exc.strerror})") from None
        if header != SQLITE_HEADER:
            what = "empty" if not header else "not an SQLite file"
            raise TunixError(f"{path}: {what}, not the sweep's study; restore it from a copy, or "
                             "give --out a new folder")  # fmt: skip
    with reading_study(sweep_dir):
        return optuna.storages.RDBStorage(storage_url(sweep_dir))


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object file; one TunixError naming it when it is unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else _reason(exc)
        raise TunixError(f"{path}: not readable JSON ({reason})") from None
    if not isinstance(data, dict):
        raise TunixError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _definition_problem(data: Mapping[str, Any]) -> str | None:
    """What makes ``data`` no sweep definition, in the fields the sweep commands read."""
    if not isinstance(data.get("name"), str) or not data["name"]:
        return "name: must be the study's name"
    if not isinstance(data.get("objective"), str):
        return "objective: must be a dotted path"
    if data.get("direction") not in DIRECTIONS:
        return f"direction: must be one of {', '.join(DIRECTIONS)}"
    space = data.get("space")
    if not isinstance(space, dict) or not space:
        return "space: must map the searched fields"
    return None


def read_definition(sweep_dir: Path) -> dict[str, Any]:
    """The folder's ``sweep.json``, checked; one TunixError naming it when it is damaged."""
    path = sweep_dir / DEFINITION
    if not path.is_file():
        raise TunixError(f"{sweep_dir}: not a sweep folder (no {DEFINITION}); a rerun of the "
                         "sweep's own command writes it again")  # fmt: skip
    data = read_json_object(path)
    problem = _definition_problem(data)
    if problem is not None:
        raise TunixError(f"{path}: not a sweep definition: {problem}; a rerun of the sweep's "
                         f"own command after deleting {DEFINITION} writes it again")  # fmt: skip
    return data


def _changed(saved: Mapping[str, Any], definition: Mapping[str, Any]) -> str:
    return ", ".join(sorted(k for k in {*saved, *definition} if saved.get(k) != definition.get(k)))


def distribution(param: ParamSpec) -> BaseDistribution:
    if param.type == "categorical":
        return CategoricalDistribution(list(param.choices or []))
    assert param.low is not None and param.high is not None  # ParamSpec.problem() checked
    if param.type == "int":
        step = 1 if param.step is None else int(param.step)
        return IntDistribution(int(param.low), int(param.high), log=param.log, step=step)
    return FloatDistribution(param.low, param.high, log=param.log, step=param.step)


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    return {field: distribution(param) for field, param in spec.space.items()}


def make_sampler(spec: SweepSpec, already: int) -> optuna.samplers.BaseSampler:
    """The seeded sampler; ``already`` (trials in the study) shifts the seed so that a
    resumed sweep does not draw its first trials' random points again. The shift wraps
    around, so a seed near the top stays a valid NumPy seed."""
    seed = (spec.seed + already) % (MAX_SEED + 1)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.pruner_startup_trials, n_warmup_steps=spec.pruner_warmup_steps
    )


def intermediate_value(value: float, spec: SweepSpec) -> float:
    """What a trial reports for a step whose ``prune_on`` metric is ``value``: negated
    when that metric runs the other way from the objective, since Optuna's pruner reads
    intermediate values in the study's direction (a higher loss, a lower eval accuracy,
    always counts as worse)."""
    return value if spec.prune_mode == spec.direction else -value


def report_step(trial: optuna.Trial, spec: SweepSpec, step: int, metrics: Mapping[str, float],
                carried: Container[int] = ()) -> bool:  # fmt: skip
    """Report a step's ``prune_on`` metric as the trial's intermediate value, unless the
    step has none (an eval metric between evaluations) or is one of ``carried`` (a retry
    kept it from the killed trial); whether the pruner stops the trial now."""
    value = metrics.get(spec.prune_on)
    if value is None:
        return False
    if step not in carried:
        trial.report(intermediate_value(value, spec), step)
    return trial.should_prune()


def direction(spec: SweepSpec) -> optuna.study.StudyDirection:
    maximise = spec.direction == "maximize"
    return optuna.study.StudyDirection.MAXIMIZE if maximise else optuna.study.StudyDirection.MINIMIZE


def open_sweep(sweep: Sweep, sweep_dir: Path) -> optuna.Study:
    """The sweep folder's study, created for a new folder. A rerun must be the same search
    as both ``sweep.json`` and the study recorded (``trials``, ``time_budget`` and
    ``concurrent_trials`` may change); a folder whose study was lost, renamed or replaced
    is refused rather than started again over its trials. Call it holding the folder's
    lock: it writes ``sweep.json``."""
    definition = json.loads(json.dumps(sweep.definition()))  # tuples -> lists, as saved
    saved_path = sweep_dir / DEFINITION
    saved = read_definition(sweep_dir) if saved_path.exists() else None
    refuse = "rerun it with its own sweep file, or give --out a new folder"
    if saved is not None and saved != definition:
        raise ConfigError(f"{sweep_dir}: holds a sweep with a different "
                          f"{_changed(saved, definition)}; {refuse}")  # fmt: skip
    # A folder with trials and no study: a new study would write over trial 0's folder.
    earlier = saved is not None or any(any((sweep_dir / f).glob("*")) for f in (TRIALS, RUNS))
    lost = (f"{sweep_dir}: has trials but no study in {STUDY_DB} (deleted or replaced); "
            "restore it, or give --out a new folder")  # fmt: skip
    if earlier and not (sweep_dir / STUDY_DB).exists():
        raise TunixError(lost)
    storage = open_storage(sweep_dir)
    with reading_study(sweep_dir):
        names = optuna.study.get_all_study_names(storage)
    others = [name for name in names if name != sweep.name]
    if others:
        raise ConfigError(f"{sweep_dir / STUDY_DB}: holds the study {others[0]!r}, not "
                          f"{sweep.name!r}; {refuse}")  # fmt: skip
    if earlier and not names:
        raise TunixError(lost)
    with reading_study(sweep_dir):
        study = optuna.create_study(
            storage=storage, study_name=sweep.name, direction=direction(sweep.spec),
            pruner=make_pruner(sweep.spec), load_if_exists=True,
        )  # fmt: skip
        recorded = study.user_attrs.get(SEARCH)
        if recorded is None and saved is None and study.trials:
            raise TunixError(f"{sweep_dir}: {DEFINITION} is missing and {STUDY_DB} does not "
                             f"record its search; restore {DEFINITION}, or give --out a new folder")  # fmt: skip
        if recorded is not None and recorded != definition:
            raise ConfigError(f"{sweep_dir / STUDY_DB}: holds a sweep with a different "
                              f"{_changed(recorded, definition)}; {refuse}")  # fmt: skip
        if recorded is None:  # a new study, or one an earlier version started
            study.set_user_attr(SEARCH, definition)
        study.sampler = make_sampler(sweep.spec, len(study.trials))
    if saved is None:
        write_json_atomic(saved_path, definition)
    return study


def load_study(sweep_dir: Path, definition: Mapping[str, Any]) -> optuna.Study:
    """The study of an existing sweep folder, for ``tunix sweep show``: the one named in
    ``sweep.json``, which must match the search the study recorded."""
    path = sweep_dir / STUDY_DB
    if not path.is_file():
        raise TunixError(f"{path}: missing; the sweep folder has no study")
    storage = open_storage(sweep_dir)
    name = definition["name"]
    with reading_study(sweep_dir):
        names = optuna.study.get_all_study_names(storage)
        if name not in names:
            holds = f"it holds {', '.join(map(repr, names))}" if names else "it holds none"
            raise TunixError(f"{path}: no study named {name!r} (the name in {DEFINITION}); {holds}")
        study = optuna.load_study(study_name=name, storage=storage)
        recorded = study.user_attrs.get(SEARCH)
    if recorded is not None and recorded != definition:
        raise TunixError(f"{sweep_dir / DEFINITION}: does not match the search {STUDY_DB} "
                         f"recorded (a different {_changed(recorded, definition)})")  # fmt: skip
    return study


def recover_interrupted(study: optuna.Study, sweep_dir: Path) -> list[int]:
    """Trials left RUNNING by a sweep that died: mark each failed and ``interrupted`` and
    queue a retry with the same parameters, which resumes the trial's run directory.
    Returns their numbers. Only call it holding the sweep folder's lock."""
    storage = study._storage  # Optuna has no public call to fail another process's trial
    numbers = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        alive = alive_seconds(trial, sweep_dir)
        if alive is not None:
            storage.set_trial_user_attr(trial._trial_id, ALIVE_SECONDS, alive)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
        numbers.append(trial.number)
    return numbers


def counted(study: optuna.Study) -> int:
    """Trials that ended and count towards ``trials``: interrupted ones are retried instead."""
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=ENDED) if not t.user_attrs.get(INTERRUPTED)
    )


def seconds_spent(study: optuna.Study) -> float:
    """The time the ended trials took, summed over every run of the sweep."""
    return sum(trial_seconds(t) or 0.0 for t in study.get_trials(deepcopy=False, states=ENDED))


def trial_seconds(trial: FrozenTrial) -> float | None:
    if ALIVE_SECONDS in trial.user_attrs:
        return float(trial.user_attrs[ALIVE_SECONDS])
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def alive_seconds(trial: FrozenTrial, sweep_dir: Path) -> float | None:
    """How long a killed trial ran: until the newest file it or its run wrote. The time the
    sweep lay dead before it was restarted is nobody's, and must not eat the budget."""
    if trial.datetime_start is None:
        return None
    folders = [trial_dir(sweep_dir, trial.number)]
    run_dir = trial_run_dir(trial, sweep_dir)
    if run_dir is not None:
        folders.append(run_dir)
    stamps = [f.stat().st_mtime for folder in folders if folder.is_dir()
              for f in folder.rglob("*") if f.is_file()]  # fmt: skip
    if not stamps:
        return 0.0
    return max(0.0, max(stamps) - trial.datetime_start.timestamp())


def recorded_run_dir(run_dir: Path) -> str:
    """What a trial records of its run directory: the path relative to the sweep folder
    (``runs/NAME``), so that a copied or moved sweep folder resumes its own runs."""
    return (Path(RUNS) / run_dir.name).as_posix()


def trial_run_dir(trial: FrozenTrial, sweep_dir: Path) -> Path | None:
    """A trial's run directory in this sweep folder, or None before it had one. Earlier
    versions recorded absolute paths; their runs too are read from this folder's ``runs/``."""
    recorded = trial.user_attrs.get(RUN_DIR)
    name = Path(recorded).name if isinstance(recorded, str) else ""
    if name in ("", ".", ".."):
        return None
    return sweep_dir.resolve() / RUNS / name


def retried_trial(study: optuna.Study, user_attrs: Mapping[str, Any]) -> FrozenTrial | None:
    """The killed trial a retry continues, or None for a fresh trial."""
    number = user_attrs.get(RETRY_OF)
    return None if number is None else study.trials[int(number)]


def resume_dir(previous: FrozenTrial | None, sweep_dir: Path) -> Path | None:
    """The run directory a retry resumes: the killed trial's, if it got as far as one."""
    path = None if previous is None else trial_run_dir(previous, sweep_dir)
    return path if path is not None and RunLayout(path).manifest_path.is_file() else None


def trial_config(sweep: Sweep, sweep_dir: Path, number: int, params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's run config: the base with its parameters, its run directory under
    ``runs/`` named after the sweep and trial."""
    config = sweep.trial_config(params)
    run = config.setdefault("run", {})
    run["output_dir"] = str((sweep_dir / RUNS).resolve())
    run["name"] = f"{sweep.name}-trial-{number:04d}"
    return config
