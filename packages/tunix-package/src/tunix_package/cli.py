"""``tunix package``: build (or rebuild) the submission bundle of a finished run."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

from tunix_core.config import PackageSection, load_run_config
from tunix_core.errors import ConfigError
from tunix_core.layout import MODEL
from tunix_core.protocols import RunContext
from tunix_core.registry import UnknownNameError
from tunix_core.rundir import RunDirectory, run_lock
from tunix_package.kaggle import evidence_dir_problem, export_evidence, out_dir_problem


@click.command("package")
@click.option(
    "--run",
    "run_path",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The run directory, e.g. runs/tunix-20260101-120000.",
)
@click.option(
    "--packager",
    "packager_name",
    default=None,
    help="Registered packager (default: the run's package.packager, else kaggle).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the bundle and model/ here instead of RUN/submission.",
)
@click.option(
    "--export-evidence",
    "evidence_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also copy the bundle's files (not the model) to this folder, e.g. submission_runs/NAME.",
)
@click.pass_context
def package_command(ctx: click.Context, run_path: Path, packager_name: str | None,
                    out_dir: Path | None, evidence_dir: Path | None) -> None:  # fmt: skip
    """Build the submission zip of a run, export its model beside it and validate both.

    The options of the run's config (package.max_bundle_bytes, package.prediction_sample,
    package.options) apply; the bundle is <run-name>_<date>_<shortsha>.zip.
    """
    run = RunDirectory.open(run_path)
    section = (
        load_run_config(run.config_path).package if run.config_path.is_file() else PackageSection()
    )
    name = packager_name or section.packager
    host = ctx.find_root().obj
    try:
        packager = host.packagers.load(name)()
    except UnknownNameError as exc:
        raise click.BadParameter(str(exc), param_hint="--packager") from None

    options = {**section.options, "max_bundle_bytes": section.max_bundle_bytes,
               "prediction_sample": section.prediction_sample}  # fmt: skip
    if out_dir is not None:
        options["out_dir"] = str(out_dir)
    # Checked before the run's lock is taken: a refused --out leaves the run untouched.
    bundle_dir = Path(options.get("out_dir") or run.submission_dir)
    refusal = out_dir_problem(run, bundle_dir)
    if refusal is not None:
        raise ConfigError(refusal)
    if evidence_dir is not None:
        refusal = evidence_dir_problem(run, bundle_dir, evidence_dir)
        if refusal is not None:
            raise click.BadParameter(refusal, param_hint="--export-evidence")
    writes_into_run = out_dir is None or out_dir.resolve().is_relative_to(run.path.resolve())
    with run_lock(run, "tunix package") if writes_into_run else contextlib.nullcontext():
        # progress on stderr: the judges' path gate's verdict, the export's round trip
        context = RunContext(host, progress=lambda line: click.echo(line, err=True))
        bundle = packager.package(run, options, context=context)
    click.echo(f"Bundle: {bundle} ({bundle.stat().st_size:,} bytes)")
    click.echo(f"Model export: {bundle.parent / MODEL}")
    if evidence_dir is not None:
        written = export_evidence(bundle, evidence_dir)
        click.echo(f"Evidence: {len(written)} file(s) copied to {evidence_dir}")
