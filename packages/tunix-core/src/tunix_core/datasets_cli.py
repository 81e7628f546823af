"""``tunix datasets``: list, show and export datasets."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from tunix_core.data.record import ReasoningExample
    from tunix_core.registry import DatasetRegistry

_SPLIT = click.option("--split", default="eval", show_default=True, help="Split to read.")
_SEED = click.option("--seed", default=0, show_default=True, help="Dataset seed (dataset.seed).")
_LIMIT = click.option("--limit", type=click.IntRange(min=1), help="Only the first N items.")
_OPTIONS = click.option(
    "--set",
    "options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A dataset option (dataset.options), e.g. --set eval_fraction=0.1 "
    "or --set columns.question=prompt.",
)
_SYSTEM_PROMPT = click.option(
    "--system-prompt",
    help="System prompt for rendering (default: dataset.system_prompt's default).",
)


def _registry(ctx: click.Context) -> DatasetRegistry:
    host = ctx.find_root().obj
    if host is None:
        from tunix_core.plugins import get_host

        host = get_host()
    registry: DatasetRegistry = host.datasets
    return registry


def _load(
    ctx: click.Context, name: str, split: str, seed: int, options: Sequence[str], limit: int | None
) -> tuple[list[ReasoningExample], Any, dict[str, Any]]:
    from tunix_core.config import apply_overrides
    from tunix_core.data.loading import load_split, resolve_provider

    registry = _registry(ctx)
    parsed = apply_overrides({}, options)
    examples = load_split(registry, name, split, seed=seed, options=parsed, limit=limit)
    provider, _ = resolve_provider(registry, name)
    return examples, provider, parsed


@click.group("datasets")
def datasets() -> None:
    """Datasets registered by installed plugins."""


@datasets.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """List dataset providers with their descriptions and distributions."""
    for entry in _registry(ctx).entries():
        click.echo(f"{entry.name:<20} {entry.description}  [{entry.distribution}]")


@datasets.command("show")
@click.argument("name")
@_SPLIT
@click.option("--limit", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many items to print.")  # fmt: skip
@_SEED
@_OPTIONS
@click.option("--rendered", is_flag=True, help="Print the chat turns the model trains on.")
@_SYSTEM_PROMPT
@click.pass_context
def show_command(ctx: click.Context, name: str, split: str, limit: int, seed: int,
                 options: tuple[str, ...], rendered: bool, system_prompt: str | None) -> None:  # fmt: skip
    """Print the first items of dataset NAME (a name or NAME:ARG, e.g. jsonl:data.jsonl)."""
    from tunix_core.config import DEFAULT_SYSTEM_PROMPT
    from tunix_core.data.render import render_example

    examples, _, _ = _load(ctx, name, split, seed, options, limit)
    prompt = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
    for number, example in enumerate(examples, start=1):
        meta = example.meta
        header = f"[{number}/{len(examples)}] {example.id}"
        click.secho(f"{header}  {meta.category} · {meta.section} · {meta.difficulty}", bold=True)
        if rendered:
            text = render_example(example, prompt)
            click.secho("--- prompt ---", dim=True)
            click.echo(text.prompt, nl=False)
            click.secho("\n--- completion (trained on) ---", dim=True)
            click.echo(text.completion)
        else:
            click.echo(f"  Q: {example.question}")
            for index, step in enumerate(example.steps, start=1):
                click.echo(f"  {index}. {step}")
            click.echo(f"  A: {example.answer}")
        click.echo()


@datasets.command("export")
@click.argument("name")
@click.option("--split", required=True, help="Split to export.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "rendered"]), default="jsonl",
              show_default=True, help="jsonl: records; rendered: id, prompt and completion.")  # fmt: skip
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output file; PATH.manifest.json is written beside it.")  # fmt: skip
@_SEED
@_LIMIT
@_OPTIONS
@_SYSTEM_PROMPT
@click.pass_context
def export_command(ctx: click.Context, name: str, split: str, fmt: str, out: Path, seed: int,
                   limit: int | None, options: tuple[str, ...],
                   system_prompt: str | None) -> None:  # fmt: skip
    """Write a split of dataset NAME to a file, with a manifest (checksum, counts, version).

    The same dataset, split, seed and options give byte-identical files.
    """
    from tunix_core.config import DEFAULT_SYSTEM_PROMPT
    from tunix_core.data.record import dumps_jsonl
    from tunix_core.data.render import render_example
    from tunix_core.jsonio import write_json_atomic, write_text_atomic

    examples, provider, parsed = _load(ctx, name, split, seed, options, limit)
    prompt = DEFAULT_SYSTEM_PROMPT if system_prompt is None else system_prompt
    if fmt == "jsonl":
        text = dumps_jsonl(examples)
    else:
        rows = []
        for example in examples:
            rendered = render_example(example, prompt)
            rows.append(
                {"id": rendered.id, "prompt": rendered.prompt, "completion": rendered.completion}
            )
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    data = text.encode("utf-8")
    write_text_atomic(out, text)
    manifest: dict[str, Any] = {
        "dataset": name,
        "split": split,
        "format": fmt,
        "seed": seed,
        "limit": limit,
        "options": parsed,
        "generator_version": getattr(provider, "version", None),
        "system_prompt": prompt if fmt == "rendered" else None,
        "file": out.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "count": len(examples),
        "counts": {
            "split": {split: len(examples)},
            "category": dict(sorted(Counter(e.meta.category for e in examples).items())),
            "section": dict(sorted(Counter(e.meta.section for e in examples).items())),
            "difficulty": dict(sorted(Counter(e.meta.difficulty for e in examples).items())),
        },
    }
    manifest_path = manifest_path_for(out)
    write_json_atomic(manifest_path, manifest)
    click.echo(f"Wrote {len(examples)} {split} items to {out} (sha256 {manifest['sha256'][:12]}…)")
    click.echo(f"Manifest: {manifest_path}")


def manifest_path_for(out: Path) -> Path:
    """Where the manifest of an export to ``out`` goes: ``out`` + ``.manifest.json``."""
    return out.with_name(out.name + ".manifest.json")
