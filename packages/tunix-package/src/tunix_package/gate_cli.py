"""``tunix gate RUN``: the judges' path (:mod:`tunix_package.gate`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tunix_package.gate import (
    DEFAULT_ITEMS,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_THRESHOLD,
    check_threshold,
    format_report,
    run_gate,
)


@click.command("gate")
@click.argument("run_path", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--threshold",
    type=float,
    default=DEFAULT_THRESHOLD,
    show_default=True,
    help="Lowest format rate through google-tunix's Sampler that passes (0 to 1).",
)
@click.option(
    "--items",
    type=click.IntRange(min=1),
    default=DEFAULT_ITEMS,
    show_default=True,
    help="Prompts from each source: the run's eval data and judging-mix.",
)
@click.option(
    "--max-new-tokens",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_NEW_TOKENS,
    show_default=True,
    help="Longest completion, in tokens.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def gate_command(ctx: click.Context, run_path: Path, threshold: float, items: int,
                 max_new_tokens: int, as_json: bool) -> None:  # fmt: skip
    """Sample a run's export through google-tunix's loader and Sampler, as the graders do;
    exit 1 when the format rate is below --threshold. Writes RUN/judges_path.json."""
    check_threshold(threshold)
    report = run_gate(run_path, ctx.find_root().obj, threshold=threshold, count=items,
                      max_new_tokens=max_new_tokens,
                      progress=lambda line: click.echo(line, err=True))  # fmt: skip
    click.echo(json.dumps(report, indent=2) if as_json else format_report(report))
    if report["ran"] and not report["passed"]:
        ctx.exit(1)
