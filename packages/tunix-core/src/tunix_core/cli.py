"""The ``tunix`` command line: a Click host assembled from whatever plugins are installed.

Nothing here imports JAX: plugins register lazy targets and their commands import heavy
libraries inside the command body.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import click

from tunix_core import __version__
from tunix_core.command_group import TunixGroup
from tunix_core.errors import ConfigError, TunixError
from tunix_core.evidence import EVIDENCE_FILES, validate_tree
from tunix_core.hugepages import reexec_with_huge_pages
from tunix_core.plugins import PluginHost, get_host
from tunix_core.protocols import RunContext
from tunix_core.types import STAGE_NAMES

# What a shell reports for a command ended by SIGINT (128 + 2).
SIGINT_EXIT_CODE = 130


def host_of(ctx: click.Context) -> PluginHost:
    host: PluginHost = ctx.find_root().obj
    return host


@click.group(cls=TunixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tunix")
def cli() -> None:
    """Teach Gemma models to show their work: datasets, fine-tuning, evaluation and
    Kaggle packaging, assembled from installed plugins.

    \b
    Start here:
      tunix plugins                 what is installed
      tunix datasets list           datasets you can train on
      tunix run --trainer jax --dataset dev-reasoning-v2
    """


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins_command(ctx: click.Context, as_json: bool) -> None:
    """List installed plugins, their hooks and what each provides."""
    host = host_of(ctx)
    provides = host.provides()
    records: list[dict[str, Any]] = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "status": p.status,
            "hooks": list(p.hooks),
            "provides": provides.get(p.distribution, {}),
            "error": p.error or None,
        }
        for p in host.plugins
    ]
    if as_json:
        click.echo(json.dumps({"plugins": records, "conflicts": host.conflicts()}, indent=2))
        return
    if not records:
        click.echo("No plugins installed (entry-point group 'tunix').")
    for conflict in host.conflicts():
        click.echo(f"conflict: {conflict}")
    for record in records:
        click.echo(f"{record['distribution']} {record['version']}  [{record['name']}]  {record['status']}")
        if record["error"]:
            click.echo(f"    error: {record['error']}")
        for kind, names in sorted(record["provides"].items()):
            click.echo(f"    {kind}: {', '.join(names)}")
        if record["hooks"]:
            click.echo(f"    hooks: {', '.join(record['hooks'])}")


@cli.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--deep", is_flag=True,
              help="Also load each model export and re-run its probe (slower: loads the "
              "weights); without it, weight files are checked by size and sha256.")  # fmt: skip
@click.pass_context
def validate_command(ctx: click.Context, path: Path, deep: bool) -> None:
    """Check evidence files (a run directory, a bundle, or one file) against their schemas,
    and a submission bundle against the rules of every installed packager."""
    # A bundle (a zip, say) is not an evidence file itself: the packagers judge it.
    bundle = path.is_file() and path.name not in EVIDENCE_FILES
    checked, problems = ([], []) if bundle else validate_tree(path)
    host = host_of(ctx)
    context = RunContext(host)
    packagers = host.packagers.entries()
    for packager_entry in packagers:
        packager = packager_entry.load()()
        found = packager.validate(path, context=context, deep=deep)
        problems += [f"[{packager_entry.name}] {p}" for p in found if p not in problems]
    for problem in problems:
        click.echo(f"  {problem}", err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {path}", err=True)
        ctx.exit(1)
    by = ", ".join(e.name for e in packagers) or "no packager installed"
    click.echo(f"OK: {path}: {len(checked)} evidence file(s) valid; packager checks: {by}")


@cli.command("run")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML config file (see docs/configuration.md).")
@click.option("--trainer", help="Trainer name (config: trainer.name).")
@click.option("--dataset", help="Dataset name or NAME:ARG, e.g. jsonl:my.jsonl (config: dataset.name).")
@click.option("--model", "preset", help="Model preset (config: model.preset).")
@click.option("--weights", help="default | random | gguf:PATH | safetensors:DIR | orbax:DIR (a Kaggle Flax Gemma checkpoint, or a run's model/params).")
@click.option("--init-from", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Start from the trained model of this run directory, e.g. SFT then GRPO (config: model.init_from).")
@click.option("--steps", type=int, help="Training steps (config: training.steps).")
@click.option("--time-budget", help="Stop training cleanly before this much time, e.g. 8h45m.")
@click.option("--name", help="Run name; the run id is NAME-DATE-TIME (config: run.name).")
@click.option("--output-dir", help="Where run directories go (config: run.output_dir).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any config field, e.g. --set training.learning_rate=1e-4.")
@click.option("--resume", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Finish an interrupted run directory.")
@click.option("--stop-after", type=click.Choice(STAGE_NAMES),
              help="Stop after this stage (resume later with --resume).")
@click.pass_context
def run_command(ctx: click.Context, config_path: Path | None, trainer: str | None,
                dataset: str | None, preset: str | None, weights: str | None,
                init_from: Path | None, steps: int | None,
                time_budget: str | None, name: str | None, output_dir: str | None,
                overrides: tuple[str, ...], resume: Path | None, stop_after: str | None) -> None:  # fmt: skip
    """Build the dataset, measure the untrained model, fine-tune, evaluate and package.

    Everything (plugins, config, dataset, weights) is validated before the run
    directory is created; an interrupted run continues with --resume.
    """
    # startup: the runner and its config parsing would slow every `tunix` start.
    from tunix_core import api

    if resume is not None:
        given = [config_path, trainer, dataset, preset, weights, init_from, steps, time_budget, name,
                 output_dir]  # fmt: skip
        if any(v is not None for v in given) or overrides:
            raise click.UsageError("--resume continues a run with its saved config; drop other options")
    flags = {"trainer.name": trainer, "dataset.name": dataset, "model.preset": preset,
             "model.weights": weights, "training.steps": steps,
             "model.init_from": init_from.resolve() if init_from else None,
             "training.time_budget": time_budget, "run.name": name,
             "run.output_dir": output_dir}  # fmt: skip
    all_overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + list(overrides)
    try:
        api.run(config_path, overrides=all_overrides, resume=resume, stop_after=stop_after,
                echo=click.echo, host=host_of(ctx), command=sys.argv)  # fmt: skip
    except KeyboardInterrupt:  # a started run has already said how to continue
        ctx.exit(SIGINT_EXIT_CODE)


cli.huge_page_commands.add("run")


@cli.command("plan")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML config file to plan.",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Plan a later session of this run directory instead: its unfinished phases get "
    "this session's budgets in the run's own config (then: tunix run --resume RUN).",
)
@click.option("--hours", type=float, required=True, help="The session's length, e.g. 9.")
@click.option(
    "--weekly-hours",
    type=float,
    help="The weekly quota, e.g. 20: the session gets at most what is left of it.",
)
@click.option(
    "--used-hours",
    type=float,
    help="Hours of --weekly-hours already used (default: 0, or with --resume what the "
    "run records).",
)
@click.option(
    "--margin",
    help="Kept for export, the judges' path gate and packaging, e.g. 30m "
    "(default: 5 % of the hours).",
)
@click.option(
    "--max-loss",
    default="15m",
    show_default=True,
    help="The most training a preemption may lose: sets training.checkpoint_every.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the planned config goes (run it with tunix run -c) [default: plan.yaml].",
)
@click.pass_context
def plan_command(ctx: click.Context, config_path: Path | None, resume_dir: Path | None,
                 hours: float, weekly_hours: float | None, used_hours: float | None,
                 margin: str | None, max_loss: str, out: Path | None) -> None:  # fmt: skip
    """Measure step times on these devices, then split --hours between the run's stages.

    A short run of the config (a few compiled steps of every training phase, one eval
    batch per split) gives the step times and a checkpoint save's; the plan gives each
    phase its steps, time_budget and checkpoint_every, and writes the config with them to
    --out. With --weekly-hours the session gets at most what the week has left.
    """
    # startup: the planner pulls in the runner
    from tunix_core.session_plan import plan_resumed, plan_session

    if (config_path is None) == (resume_dir is None):
        raise ConfigError("plan: give -c CONFIG to plan a new run or --resume RUN, not both")
    margin_seconds = _seconds("--margin", margin)
    max_loss_seconds = _seconds("--max-loss", max_loss) or 0.0
    if resume_dir is not None:
        if out is not None:
            raise ConfigError("--out: --resume rewrites the run's own config, in the run directory")
        plan_resumed(resume_dir, hours=hours, margin_seconds=margin_seconds,
                     max_loss_seconds=max_loss_seconds, weekly_hours=weekly_hours,
                     used_hours=used_hours, host=host_of(ctx), echo=click.echo)  # fmt: skip
    else:
        assert config_path is not None  # one of the two, checked above
        plan_session(config_path, hours=hours, margin_seconds=margin_seconds,
                     max_loss_seconds=max_loss_seconds, out=out or Path("plan.yaml"),
                     weekly_hours=weekly_hours, used_hours=used_hours, host=host_of(ctx),
                     echo=click.echo)  # fmt: skip


def _seconds(option: str, text: str | None) -> float | None:
    """A duration option in seconds, or one line naming it."""
    from tunix_core.config import parse_duration  # startup: see run_command

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def build_cli() -> click.Group:
    """The CLI with every plugin's commands added; warns once about broken plugins. A
    command that wants huge pages re-executes the process here, before any warning."""
    host = get_host()
    host.register_commands(cli)
    reexec_with_huge_pages(cli.huge_page_commands)
    cli.context_settings["obj"] = host
    failures = host.failures
    if failures:
        names = ", ".join(f"{f.name} ({f.distribution})" for f in failures)
        click.echo(f"warning: {len(failures)} tunix plugin(s) failed to load: {names}; "
                   "see `tunix plugins`", err=True)  # fmt: skip
    for conflict in host.conflicts():
        click.echo(f"warning: {conflict}", err=True)
    return cli


def traceback_dir() -> Path:
    """Where ``main`` saves the traceback of an unexpected error: ``$XDG_STATE_HOME/tunix/
    tracebacks`` (``~/.local/state/tunix/tracebacks`` when unset)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "tunix" / "tracebacks"


def save_traceback(exc: BaseException) -> str:
    """Write ``exc``'s traceback to a new file and return its path, or why it could not be
    saved (the disk may be what failed)."""
    text = "".join(traceback.format_exception(exc))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    reason = "the traceback could not be saved"
    for folder in (traceback_dir(), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=f"tunix-{stamp}-", suffix=".txt", dir=folder)
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            reason = f"the traceback could not be saved ({error.strerror or error})"
            continue
        return f"traceback saved to {name}"
    return reason


def os_error_line(exc: OSError) -> str:
    """``exc`` as one line that names the file, e.g. ``runs/x: No space left on device``."""
    message = exc.strerror or str(exc) or type(exc).__name__
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {message}" if paths else message


def main() -> None:
    """The ``tunix`` command. Every error ends as one line on stderr: a :class:`TunixError`
    with its exit code, an OS error (disk full, permission denied) with exit code 1, and
    anything unexpected with exit code 1 and the path of its saved traceback."""
    try:
        build_cli().main(prog_name="tunix")  # standalone: ends in SystemExit
    except TunixError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:
        click.echo(f"Error: {os_error_line(exc)}", err=True)
        sys.exit(1)
    except Exception as exc:
        summary = f"{type(exc).__name__}: {exc}".splitlines()[0]
        click.echo(f"Error: unexpected {summary} (a bug in tunix or a plugin); "
                   f"{save_traceback(exc)}", err=True)  # fmt: skip
        sys.exit(1)
