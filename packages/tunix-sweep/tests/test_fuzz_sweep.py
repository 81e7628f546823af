"""Fuzzed sweep files, and fuzzed inputs of `tunix sweep show` (sweep.json, summary.json,
the bytes of study.db): a usable sweep, a valid display or one line naming the problem,
never a traceback."""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import optuna
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunix_core.errors import TunixError
from tunix_sweep import results
from tunix_sweep import study as studies
from tunix_sweep.cli import sweep as sweep_command
from tunix_sweep.spec import load_sweep

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))  # fmt: skip
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)  # fmt: skip



# Sweep files that are valid more often than not, then 0 to 2 values replaced by anything:
# both what a sweep does with a good file and the errors of a bad one are exercised.
RANGES = {
    "training.learning_rate": st.fixed_dictionaries(
        {"type": st.just("float"), "low": st.floats(1e-6, 1e-3), "high": st.floats(1e-3, 0.5)},
        optional={"log": st.booleans(), "step": st.floats(1e-6, 1.0)},
    ),
    "training.lora.rank": st.fixed_dictionaries(
        {"type": st.just("int"), "low": st.integers(1, 8), "high": st.integers(1, 2**40)},
        optional={"step": st.integers(1, 20), "log": st.booleans()},
    ),
    "training.schedule": st.fixed_dictionaries({
        "type": st.just("categorical"),
        "choices": st.lists(st.sampled_from(["cosine", "constant"]), min_size=1, max_size=3),
    }),
}  # fmt: skip
SPACE = st.lists(st.sampled_from(sorted(RANGES)), min_size=1, max_size=3, unique=True).flatmap(
    lambda fields: st.fixed_dictionaries({f: RANGES[f] for f in fields})
)
GOOD_FILE = st.fixed_dictionaries({"space": SPACE}, optional={
    "name": st.text("abc-", min_size=1, max_size=8), "trials": st.integers(1, 50),
    "objective": st.sampled_from(["primary_score", "scorecard.overall.format_compliance"]),
    "direction": st.sampled_from(["maximize", "minimize"]),
    "time_budget": st.sampled_from(["1h", "20m", "90s"]), "sampler": st.sampled_from(["tpe", "random"]),
    "seed": st.integers(0, 2**32 - 1), "pruner": st.sampled_from(["median", "none"]),
    "pruner_startup_trials": st.integers(0, 5), "concurrent_trials": st.integers(1, 4),
})  # fmt: skip
KEYS = st.sampled_from(["name", "base", "trials", "objective", "direction", "time_budget",
                        "sampler", "seed", "pruner", "space", "low", "high", "step", "log",
                        "choices", "type"])  # fmt: skip
ODD = SCALARS | st.integers(-(2**70), 2**70) | st.lists(SCALARS, max_size=3) | st.just({})


def _with(data: Any, key: str, value: Any) -> Any:
    """``data`` with ``key`` set to ``value`` wherever it is, at the top or in a parameter."""
    if key in ("low", "high", "step", "log", "choices", "type"):
        space = data["space"] if isinstance(data.get("space"), dict) else {}
        return {**data, "space": {f: {**p, key: value} for f, p in space.items()}}
    return {**data, key: value}


SWEEP_FILE = st.tuples(GOOD_FILE, st.lists(st.tuples(KEYS, ODD), max_size=2)).map(
    lambda drawn: functools.reduce(lambda d, kv: _with(d, *kv), drawn[1], drawn[0])
)


@FUZZ
@given(data=SWEEP_FILE, already=st.integers(0, 50), noise=st.binary(max_size=8))
def test_a_sweep_file_is_usable_or_one_error(data: dict[str, Any], already: int, noise: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sweep.yaml"
        path.write_bytes(yaml.safe_dump(data).encode() + (noise if already % 5 == 0 else b""))
        try:
            sweep = load_sweep(path)
        except TunixError:
            return
        # What the sweep does with it: its distributions, the seeded sampler of a rerun.
        study = optuna.create_study(sampler=studies.make_sampler(sweep.spec, already))
        params = study.ask(studies.distributions(sweep.spec)).params
        assert set(params) == set(sweep.spec.space)


@functools.cache
def finished_folder() -> Path:
    """A sweep folder as a sweep leaves it: completed trials whose parameters and
    objectives vary, a failed and a pruned trial, sweep.json and summary.json."""
    root = Path(tempfile.mkdtemp(prefix="fuzz-sweep-"))
    (root / "s.yaml").write_text(yaml.safe_dump({"space": {
        "training.learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
        "training.lora.rank": {"type": "int", "low": 2, "high": 8},
    }, "trials": 6}))  # fmt: skip
    sweep = load_sweep(root / "s.yaml")
    folder = root / "sweep"
    folder.mkdir()
    study = studies.open_sweep(sweep, folder)
    for number in range(6):
        trial = study.ask(studies.distributions(sweep.spec))
        trial.report(-1.0 / (number + 1), 1)
        trial.set_user_attr(studies.RUN_DIR, f"runs/s-trial-{number:04d}-1")
        if number == 4:
            trial.set_user_attr(studies.ERROR, "tunix run exited with 1")
        state = {4: optuna.trial.TrialState.FAIL, 5: optuna.trial.TrialState.PRUNED}.get(number)
        study.tell(trial, None if state else number / 10, state=state)
    results.write_summary(study, folder, studies.read_definition(folder), backend="local", planned=6)
    return folder


def _replaced(original: Any, key: Any, value: Any) -> Any:
    return {**original, key: value} if isinstance(original, dict) and isinstance(key, str) else value


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.sampled_from(["sweep.json", "summary.json", "study.db", "none"]),
    key=st.none() | st.sampled_from(["name", "objective", "direction", "space", "seed",
                                     "backend", "trials_planned", "trials"]),
    value=JSON,
    cut=st.integers(0, 200_000),
    patch=st.binary(min_size=1, max_size=16),
    as_json=st.booleans(),
)
def test_show_displays_or_names_the_damaged_file(which: str, key: str | None, value: Any, cut: int,
                                                 patch: bytes, as_json: bool) -> None:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sweep"
        shutil.copytree(finished_folder(), folder)
        path = folder / which
        if which.endswith(".json"):  # one field replaced, or the whole file
            text = json.dumps(_replaced(json.loads(path.read_text()), key, value))
            path.write_text(text if cut % 3 else text[: cut % (len(text) + 1)])
        elif which == "study.db":  # truncated, or bytes overwritten
            data = bytearray(path.read_bytes())
            offset = cut % (len(data) + 1)
            data = data[:offset] if key is None else data[:offset] + patch + data[offset + len(patch):]
            path.write_bytes(bytes(data))
        shown = CliRunner().invoke(sweep_command, ["show", str(folder), *(["--json"] if as_json else [])])
        if shown.exception is not None:
            assert isinstance(shown.exception, TunixError), repr(shown.exception)
            assert "\n" not in str(shown.exception) and str(folder) in str(shown.exception)
        elif as_json:
            assert set(json.loads(shown.output)) >= {"sweep", "best", "trials"}
        else:
            assert "best: trial" in shown.output or "no completed trial yet" in shown.output
