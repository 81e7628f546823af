"""``tunix datasets``: list, show and export datasets (one by name, or a run config's
``dataset`` section, which may be a ``dataset.mix``)."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import click

from tunix_core.config import (
    DatasetSection,
    RunConfig,
    apply_overrides,
    converter,
    load_config,
    structure_config,
)
from tunix_core.data.loading import resolve_provider
from tunix_core.data.mixture import LoadedSplit, load_dataset_split
from tunix_core.data.record import dumps_jsonl
from tunix_core.data.render import render_example
from tunix_core.errors import ConfigError
from tunix_core.jsonio import write_json_atomic, write_text_atomic
from tunix_core.plugins import PluginHost, get_host
from tunix_core.protocols import DatasetRegistry, ModelSpec, TokenCounter
from tunix_core.registry import UnknownNameError

_SPLIT = click.option("--split", default="eval", show_default=True, help="Split to read.")
_SEED = click.option("--seed", type=int, help="Dataset seed (dataset.seed; default 0, or the "
                     "config's).")  # fmt: skip
_CONFIG = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the dataset section (dataset.name or dataset.mix) of this run config instead "
    "of NAME.",
)
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


def _host(ctx: click.Context) -> PluginHost:
    host: PluginHost | None = ctx.find_root().obj
    if host is None:  # the datasets group called on its own: a command line's start
        host = get_host()
    return host


def _registry(ctx: click.Context) -> DatasetRegistry:
    return _host(ctx).datasets


def _config(name: str | None, config_path: Path | None, seed: int | None,
            options: Sequence[str]) -> RunConfig:  # fmt: skip
    """The run config whose dataset section is read: ``config_path``'s, or the default one
    with ``dataset.name`` = NAME and ``--set`` as ``dataset.options``."""
    if (name is None) == (config_path is None):
        raise click.UsageError("give a dataset NAME or --config FILE (one of them)")
    if config_path is not None:
        if options:
            raise click.UsageError("--set goes with NAME; with --config, edit the config file")
        config = load_config(config_path)
    else:
        dataset = {"name": name, "options": apply_overrides({}, options)}
        config = structure_config({"dataset": dataset}, source="tunix datasets options")
    if seed is not None:
        config = attrs.evolve(config, dataset=attrs.evolve(config.dataset, seed=seed))
    return config


def _load(ctx: click.Context, section: DatasetSection, split: str, limit: int | None) -> LoadedSplit:
    host = _host(ctx)
    return load_dataset_split(host.datasets, section, split, limit=limit,
                              transforms=host.transforms)  # fmt: skip


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
@click.argument("name", required=False)
@_CONFIG
@_SPLIT
@click.option("--limit", type=click.IntRange(min=0), default=5, show_default=True,
              help="How many items to print (the counts cover the whole split).")  # fmt: skip
@_SEED
@_OPTIONS
@click.option("--rendered", is_flag=True, help="Print the chat turns the model trains on.")
@_SYSTEM_PROMPT
@click.option("--tokens", is_flag=True, help="Also measure the rendered items in tokens of the "
              "model's tokenizer (loads the model through its backend).")  # fmt: skip
@click.option("--preset", help="Model preset whose tokenizer --tokens uses (default: model.preset).")
@click.option("--weights", help="Weights spec for --tokens (default: model.weights).")
@click.option("--max-seq-len", type=click.IntRange(min=1),
              help="training.max_seq_len that --tokens compares with (default: the config's).")  # fmt: skip
@click.pass_context
def show_command(ctx: click.Context, name: str | None, config_path: Path | None, split: str,
                 limit: int, seed: int | None, options: tuple[str, ...], rendered: bool,
                 system_prompt: str | None, tokens: bool, preset: str | None,
                 weights: str | None, max_seq_len: int | None) -> None:  # fmt: skip
    """Count the items of a split of dataset NAME (a name or NAME:ARG, e.g. jsonl:data.jsonl)
    or of a config's dataset section, per part and category, and print the first ones."""
    config = _config(name, config_path, seed, options)
    section = config.dataset
    loaded = _load(ctx, section, split, None)
    examples = loaded.examples
    prompt = section.system_prompt if system_prompt is None else system_prompt
    click.secho(f"{section.label} · {split}: {len(examples)} items", bold=True)
    if loaded.parts:
        click.echo("  by part:     " + " · ".join(f"{p.name} {p.count}" for p in loaded.parts))
    by_category = sorted(Counter(e.meta.category for e in examples).items())
    click.echo("  by category: " + " · ".join(f"{name} {count}" for name, count in by_category))
    if tokens:
        model = attrs.evolve(config.model, preset=preset or config.model.preset,
                             weights=weights or config.model.weights)  # fmt: skip
        seq_len = max_seq_len or config.training.max_seq_len
        lengths = _token_lengths(ctx, attrs.evolve(config, model=model),
                                 [render_example(e, prompt).text for e in examples])  # fmt: skip
        click.echo("  " + token_summary(lengths, model.preset, seq_len))
    click.echo()
    for number, example in enumerate(examples[:limit], start=1):
        meta = example.meta
        header = f"[{number}/{min(limit, len(examples))}] {example.id}"
        click.secho(f"{header}  {meta.category} · {meta.section} · {meta.difficulty}", bold=True)
        if rendered:
            text = render_example(example, prompt)
            click.secho("--- prompt ---", dim=True)
            click.echo(text.prompt, nl=False)
            click.secho("\n--- completion (trained on) ---", dim=True)
            click.echo(text.completion)
        else:
            click.echo(f"  Q: {example.question}")
            if example.reasoning is not None:  # free-form: printed line by line, as written
                click.echo("  R: " + example.reasoning.replace("\n", "\n     "))
            for index, step in enumerate(example.steps, start=1):
                click.echo(f"  {index}. {step}")
            click.echo(f"  A: {example.answer}")
        click.echo()


def _token_lengths(ctx: click.Context, config: RunConfig, texts: Sequence[str]) -> list[int]:
    """Tokens of each text, counted by the model the config names, loaded by its backend."""
    host = ctx.find_root().obj
    if host is None or not hasattr(host, "backends"):
        host = get_host()
    try:
        backend = host.backends.load(config.model.backend)()
    except UnknownNameError as exc:
        raise ConfigError(f"model.backend: {exc}") from None
    spec = ModelSpec.from_config(config)
    backend.validate(spec)
    model = backend.load(spec, progress=lambda line: click.echo(line, err=True))
    if not isinstance(model, TokenCounter):
        raise ConfigError(f"model.backend: {config.model.backend!r} loads models that cannot "
                          "count tokens (no count_tokens), so --tokens cannot measure them")  # fmt: skip
    return [model.count_tokens(text) for text in texts]


def percentile(sorted_values: Sequence[int], share: float) -> int:
    """The nearest-rank percentile: the smallest value at least ``share`` of them reach."""
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def token_summary(lengths: Sequence[int], preset: str, max_seq_len: int) -> str:
    """``tokens (PRESET): p50 · p90 · p99 · max``, and how many items training would cut:
    a row holds ``max_seq_len`` inputs plus one target, so longer items lose their end."""
    ordered = sorted(lengths)
    cut = sum(1 for length in ordered if length > max_seq_len + 1)
    spread = " · ".join(f"p{p} {percentile(ordered, p / 100)}" for p in (50, 90, 99))
    return (f"tokens ({preset}): {spread} · max {ordered[-1]}; {cut} of {len(ordered)} "
            f"({cut / len(ordered):.1%}) over training.max_seq_len={max_seq_len}")  # fmt: skip


@datasets.command("export")
@click.argument("name", required=False)
@_CONFIG
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
def export_command(ctx: click.Context, name: str | None, config_path: Path | None, split: str,
                   fmt: str, out: Path, seed: int | None, limit: int | None,
                   options: tuple[str, ...], system_prompt: str | None) -> None:  # fmt: skip
    """Write a split of dataset NAME (or of a config's dataset section) to a file, with a
    manifest (checksum, counts, version; for a dataset.mix each part's count and sha256).

    The same dataset, split, seed and options give byte-identical files.
    """
    config = _config(name, config_path, seed, options)
    section = config.dataset
    loaded = _load(ctx, section, split, limit)
    examples = loaded.examples
    provider = None if section.mix else resolve_provider(_registry(ctx), section.name)[0]
    prompt = section.system_prompt if system_prompt is None else system_prompt
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
        "dataset": section.label,
        "split": split,
        "format": fmt,
        "seed": section.seed,
        "limit": limit,
        "options": section.options,
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
    if section.mix:
        manifest["mix"] = converter.unstructure(section.mix)
        manifest["parts"] = [part.as_dict() for part in loaded.parts]
    manifest_path = manifest_path_for(out)
    write_json_atomic(manifest_path, manifest)
    click.echo(f"Wrote {len(examples)} {split} items to {out} (sha256 {manifest['sha256'][:12]}…)")
    click.echo(f"Manifest: {manifest_path}")


def manifest_path_for(out: Path) -> Path:
    """Where the manifest of an export to ``out`` goes: ``out`` + ``.manifest.json``."""
    return out.with_name(out.name + ".manifest.json")
