"""``tunix sweep -c sweep.yaml`` runs (or continues) a sweep; ``tunix sweep show DIR``
prints its leaderboard and writes its plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from tunix_core.errors import ConfigError, TunixError
from tunix_core.layout import RunLayout
from tunix_core.rundir import run_lock
from tunix_sweep import results
from tunix_sweep import study as studies
from tunix_sweep.local import run_local
from tunix_sweep.spec import load_sweep

BACKENDS = results.BACKENDS


@click.group("sweep", invoke_without_command=True)
@click.option("-c", "--config", "sweep_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The sweep file (YAML; see docs/sweep.md).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="The sweep folder (default: sweeps/NAME). Rerun to continue it.")
@click.option("--trials", type=click.IntRange(min=1), help="Trials in all (replaces the file's).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a base config field for every trial, e.g. training.steps=20.")
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True,
              help="Run trials here one at a time, or on Ray Tune (tunix-sweep[ray]).")
@click.option("--ray-address", help="Ray cluster to join (default: start a local Ray).")
@click.pass_context
def sweep(ctx: click.Context, sweep_file: Path | None, out: Path | None, trials: int | None,
          overrides: tuple[str, ...], backend: str, ray_address: str | None) -> None:  # fmt: skip
    """Search config fields with Optuna: each trial is an ordinary run directory under
    DIR/runs, the study is DIR/study.db, and rerunning the same command after an interrupt
    continues it without repeating finished trials.

    \b
      tunix sweep -c sweep.yaml [--out DIR] [--trials N] [--set field=value ...]
      tunix sweep show DIR
    """
    if ctx.invoked_subcommand is not None:
        return
    if sweep_file is None:
        raise click.UsageError("give the sweep file with -c/--config, or `tunix sweep show DIR`")
    if ray_address is not None and backend != "ray":
        raise click.UsageError("--ray-address needs --backend ray")
    spec_sweep = load_sweep(sweep_file, overrides, trials=trials)
    if backend == "local" and spec_sweep.spec.concurrent_trials > 1:
        raise ConfigError(f"{sweep_file}: concurrent_trials: the local backend runs one trial at "
                          f"a time; use --backend ray for {spec_sweep.spec.concurrent_trials}")  # fmt: skip
    sweep_dir = out if out is not None else Path("sweeps") / spec_sweep.name
    sweep_dir.mkdir(parents=True, exist_ok=True)
    # One process drives a sweep folder: the lock comes before anything is written there.
    with run_lock(RunLayout(sweep_dir), "tunix sweep"):
        study = studies.open_sweep(spec_sweep, sweep_dir)
        definition = studies.read_definition(sweep_dir)
        for number in studies.recover_interrupted(study, sweep_dir):
            click.echo(f"trial {number} was running when the sweep stopped: failed, retried")
        click.echo(f"sweep {spec_sweep.name}: {studies.counted(study)} of "
                   f"{spec_sweep.spec.trials} trial(s) done; folder {sweep_dir}")  # fmt: skip

        def write_summary() -> dict[str, Any]:
            return results.write_summary(study, sweep_dir, definition, backend=backend,
                                         planned=spec_sweep.spec.trials)  # fmt: skip

        try:
            if backend == "ray":
                try:  # optional: tunix-sweep[ray]
                    from tunix_sweep.ray_backend import run_ray
                except ImportError as exc:
                    raise TunixError(f"--backend ray needs Ray Tune: pip install "
                                     f"'tunix-sweep[ray]' ({exc})") from None  # fmt: skip
                run_ray(spec_sweep, sweep_dir, study, address=ray_address, echo=click.echo)
            else:
                run_local(spec_sweep, sweep_dir, study, echo=click.echo, after_trial=write_summary)
        except KeyboardInterrupt:
            click.echo(f"interrupted; continue with the same command (--out {sweep_dir})")
            raise
        finally:
            summary = write_summary()
    click.echo(results.format_leaderboard(summary))


@sweep.command("show")
@click.argument("sweep_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of the table.")
def show(sweep_dir: Path, as_json: bool) -> None:
    """The leaderboard of a sweep folder (trial, state, objective, time, parameters); writes
    the optimisation-history and parameter-importance plots as PNG into it."""
    definition = studies.read_definition(sweep_dir)
    previous = results.read_summary(sweep_dir)
    study = studies.load_study(sweep_dir, definition)
    with studies.reading_study(sweep_dir):  # a damaged study.db may fail only when read
        summary = results.write_summary(
            study, sweep_dir, definition, backend=previous.get("backend", "local"),
            planned=previous.get("trials_planned", len(study.trials)),
        )  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(results.format_leaderboard(summary))
    history, importance, notes = results.write_plots(study, sweep_dir)
    for plot in (history, importance):
        if plot is not None:
            click.echo(f"wrote {plot}")
    for note in notes:
        click.echo(note)
