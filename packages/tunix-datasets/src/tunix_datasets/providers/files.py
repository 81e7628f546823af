"""A user's own data: ``jsonl:PATH`` and ``hf:PATH`` (local Hugging Face data, offline).

Rows are records in the tunix schema, any rows whose columns ``dataset.options.columns``
maps onto it, chat ``messages`` or ``prompt``/``completion`` pairs (:mod:`tunix_datasets.
shapes`), and, with ``dataset.options.transform``, rows a registered transform converts
(docs/datasets.md)::

    dataset:
      name: jsonl:data/problems.jsonl
      options:
        columns: {question: prompt, answer: target, steps: rationale}
        eval_fraction: 0.1

Steps given as one string are split on newlines; a ``reasoning`` column is kept byte for
byte (code and indentation survive). A single source is split into train and
eval by ``eval_fraction`` (seeded) or paired with ``eval_path``; a ``save_to_disk`` folder
with several splits uses its own (``train_split``/``eval_split`` pick them).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.config import FieldRuleError, structure
from tunix_core.data.record import (
    DEFAULT_ANSWER_MATCH,
    ExampleMeta,
    FieldError,
    ReasoningExample,
)
from tunix_core.data.splits import TRAIN_EVAL, require_split, seeded_split
from tunix_core.errors import ConfigError, DataError
from tunix_core.jsonio import read_user_jsonl
from tunix_core.protocols import RowTransform, TransformRegistry
from tunix_core.registry import RegistryError
from tunix_datasets.shapes import SHAPES, reshape

RECORD_FIELDS = ("id", "question", "steps", "reasoning", "answer", "category", "section",
                 "difficulty", "source", "answer_match")  # fmt: skip
META_FIELDS = ("category", "section", "difficulty", "source", "answer_match")


def _columns(_: Any, attribute: attrs.Attribute[Any], value: dict[str, str]) -> None:
    for field_name in value:
        if field_name not in RECORD_FIELDS:
            allowed = ", ".join(RECORD_FIELDS)
            raise FieldRuleError(
                attribute.name, f"unknown record field {field_name!r} (use {allowed})"
            )


def _fraction(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not 0 < value < 1:
        raise FieldRuleError(attribute.name, f"must be between 0 and 1 (exclusive), got {value!r}")


def _shape(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in SHAPES:
        raise FieldRuleError(attribute.name, f"must be one of {', '.join(SHAPES)}, got {value!r}")


@attrs.frozen
class FileOptions:
    """``dataset.options`` of the file providers.

    ``columns``: record field -> column of the source (``category``, ``section``,
    ``difficulty``, ``source`` and ``answer_match`` fill ``meta``). ``eval_fraction``: share
    of a single source held out for eval, chosen with the dataset seed. ``eval_path``: a
    separate file (or folder) for eval. ``category``: ``meta.category`` of rows that have none.
    ``train_split``/``eval_split``: split names inside a multi-split ``save_to_disk`` folder.
    ``shape``: how rows are read (``auto`` tells each row's shape by its columns, see
    :func:`tunix_datasets.shapes.detect_shape`). ``transform``: a registered row transform
    applied to every row first (``gsm8k``; plugins add more).
    """

    columns: dict[str, str] = attrs.field(factory=dict, validator=_columns)
    shape: str = attrs.field(default="auto", validator=_shape)
    transform: str | None = None
    eval_fraction: float | None = attrs.field(default=None, validator=_fraction)
    eval_path: str | None = None
    category: str = "user"
    train_split: str | None = None
    eval_split: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.eval_fraction is not None and self.eval_path is not None:
            raise FieldRuleError("eval_path", "give eval_path or eval_fraction, not both")


def _text_value(value: Any, field: str) -> Any:
    """Numbers (common for answers) become canonical text; other types are left for the
    record's validation to refuse with the field's name."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str) and field not in ("question", "reasoning"):
        return value.strip()
    return value


def _steps_value(value: Any) -> Any:
    if value is None:  # the row has free-form reasoning instead
        return ()
    if isinstance(value, str):
        return tuple(line.strip() for line in value.splitlines() if line.strip())
    if isinstance(value, list | tuple):
        return tuple(v.strip() if isinstance(v, str) else v for v in value)
    return value


def row_to_example(
    row: Mapping[str, Any], options: FileOptions, *, default_id: str, source: str
) -> ReasoningExample:
    """Map one source row onto a record; raises :class:`FieldError` naming the column."""
    if not isinstance(row, Mapping):
        raise FieldError("record", f"must be an object, got {type(row).__name__}")
    # An explicit column mapping means the rows are columns, whatever their names.
    shape = "columns" if options.shape == "auto" and options.columns else options.shape
    row, sources = reshape(row, shape)
    nested = row.get("meta")
    meta: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}

    def pick(field: str, default: Any = attrs.NOTHING) -> tuple[Any, str]:
        column = options.columns.get(field)
        if column is not None:
            if column not in row:
                raise FieldError(column, f"column mapped to {field!r} is missing")
            return row[column], column
        if field in META_FIELDS and field in meta:
            return meta[field], f"meta.{field}"
        if field in row:
            return row[field], sources.get(field, field)
        if default is attrs.NOTHING:
            raise FieldError(field, "is required (map another column with dataset.options.columns)")
        return default, field

    values: dict[str, Any] = {}
    names: dict[str, str] = {}
    defaults = {"id": default_id, "category": options.category, "section": "core",
                "difficulty": "easy", "source": source,
                "answer_match": DEFAULT_ANSWER_MATCH, "steps": None, "reasoning": None}  # fmt: skip
    raw: dict[str, Any] = {}
    for field in RECORD_FIELDS:
        raw[field], names[field] = pick(field, defaults.get(field, attrs.NOTHING))
        value = raw[field]
        values[field] = _steps_value(value) if field == "steps" else _text_value(value, field)
    if raw["steps"] is None and raw["reasoning"] is None:
        raise FieldError(
            "steps", "is required, or reasoning (map another column with dataset.options.columns)"
        )
    try:
        # meta.extra (inputs of evaluators and answer checks, e.g. HumanEval's tests) as given.
        meta_record = ExampleMeta(**{field: values[field] for field in META_FIELDS},
                                  extra=meta.get("extra", {}))  # fmt: skip
        return ReasoningExample(
            values["id"], values["question"], values["steps"], values["answer"], meta_record,
            reasoning=values["reasoning"],
        )
    except FieldError as exc:
        if exc.field.startswith("extra"):
            raise FieldError(f"meta.{exc.field}", exc.problem) from None
        base, _, rest = exc.field.partition("[")
        column = names.get(base, exc.field)
        raise FieldError(column + (f"[{rest}" if rest else ""), exc.problem) from None


def examples_from_rows(
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    options: FileOptions,
    *,
    stem: str,
    source: str,
    transform: RowTransform | None = None,
) -> list[ReasoningExample]:
    """``rows`` are ``(location, row)`` pairs; ``location`` is ``FILE:LINE`` or ``PATH row N``.
    ``transform`` (the one ``options.transform`` names) converts each row first."""
    examples: list[ReasoningExample] = []
    first_seen: dict[str, str] = {}
    for index, (location, row) in enumerate(rows, start=1):
        if transform is not None:
            try:
                row = transform(row)
            except ValueError as exc:
                raise DataError(f"{location}: transform {options.transform!r}: {exc}") from None
        try:
            example = row_to_example(row, options, default_id=f"{stem}-{index}", source=source)
        except FieldError as exc:
            raise DataError(f"{location}: {exc}") from None
        if example.id in first_seen:
            raise DataError(
                f"{location}: field 'id': {example.id!r} already used at {first_seen[example.id]}"
            )
        first_seen[example.id] = location
        examples.append(example)
    return examples


def _jsonl_rows(path: Path) -> list[tuple[str, Any]]:
    return [(f"{path}:{number}", value) for number, value in read_user_jsonl(path)]


Rows = list[tuple[str, Any]]


class _FileProvider:
    """Shared split logic: a source opens as one list of rows or as named splits of rows."""

    scheme = ""

    def splits(self) -> Sequence[str]:
        return TRAIN_EVAL

    def load(
        self,
        split: str,
        *,
        argument: str | None,
        seed: int,
        options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[ReasoningExample]:
        require_split(f"{self.scheme}:PATH", split, TRAIN_EVAL)
        if not argument:
            raise DataError(f"dataset '{self.scheme}' needs a path: {self.scheme}:PATH")
        spec = f"{self.scheme}:{argument}"
        parsed = structure(options, FileOptions, source=spec, root="dataset.options")
        path = Path(argument).expanduser()
        if parsed.eval_path is not None:
            chosen = Path(parsed.eval_path).expanduser() if split == "eval" else path
            return self._examples(self._single(chosen), chosen, parsed, transforms)
        opened = self._open(path)
        if isinstance(opened, dict):
            own_eval = self._split_name(opened, "eval", parsed) in opened
            if own_eval or parsed.eval_fraction is None:
                return self._examples(self._pick(opened, split, path, parsed), path, parsed,
                                      transforms)  # fmt: skip
            # No eval split of its own: hold out eval_fraction of the train rows.
            opened = self._pick(opened, "train", path, parsed)
        examples = self._examples(opened, path, parsed, transforms)
        if parsed.eval_fraction is None:
            if split == "train":
                return examples
            raise DataError(
                f"{spec} is a single source: set dataset.options.eval_fraction (e.g. 0.1) "
                "or dataset.options.eval_path to get an eval split"
            )
        return seeded_split(examples, parsed.eval_fraction, seed)[split]

    def _pick(
        self, splits: Mapping[str, Rows], split: str, path: Path, options: FileOptions
    ) -> Rows:
        wanted = self._split_name(splits, split, options)
        if wanted not in splits:
            raise DataError(
                f"{path}: has no split {wanted!r} for {split}; it has {', '.join(splits)} "
                f"(set dataset.options.{split}_split, or eval_fraction to split the train rows)"
            )
        return splits[wanted]

    @staticmethod
    def _split_name(splits: Mapping[str, Rows], split: str, options: FileOptions) -> str:
        if split == "train":
            return options.train_split or "train"
        return options.eval_split or next((n for n in _EVAL_SPLIT_NAMES if n in splits), "eval")

    def _single(self, path: Path) -> Rows:
        opened = self._open(path)
        if isinstance(opened, dict):
            raise DataError(f"{path}: holds several splits ({', '.join(opened)}); use one split")
        return opened

    def _examples(self, rows: Rows, path: Path, options: FileOptions,
                  transforms: TransformRegistry) -> list[ReasoningExample]:  # fmt: skip
        if not rows:
            raise DataError(f"{path}: no records")
        source = f"{self.scheme}:{path.name}"
        transform = load_transform(transforms, options.transform)
        return examples_from_rows(rows, options, stem=path.stem, source=source,
                                  transform=transform)  # fmt: skip

    def _open(self, path: Path) -> Rows | dict[str, Rows]:
        raise NotImplementedError


_EVAL_SPLIT_NAMES = ("eval", "validation", "valid", "test")


def load_transform(transforms: TransformRegistry, name: str | None) -> RowTransform | None:
    """The transform ``name`` from ``transforms`` (the run host's), or ``None``."""
    if name is None:
        return None
    try:
        transform: RowTransform = transforms.load(name)
    except RegistryError as exc:
        raise ConfigError(f"dataset.options.transform: {exc}") from None
    return transform


class JsonlProvider(_FileProvider):
    """``jsonl:PATH``: one JSON object per line."""

    description = "Your own JSONL file: jsonl:PATH"
    scheme = "jsonl"

    def _open(self, path: Path) -> Rows:
        return _jsonl_rows(path)


class HfProvider(_FileProvider):
    """``hf:PATH``: a local parquet, arrow, JSON or JSON Lines file, or a ``datasets``
    ``save_to_disk`` folder.

    Only local data: nothing is downloaded. Needs the ``hf`` extra (``datasets``).
    """

    description = "A local Hugging Face dataset: hf:PATH (parquet, arrow, json, jsonl or save_to_disk)"
    scheme = "hf"

    def _open(self, path: Path) -> Rows | dict[str, Rows]:
        try:
            import datasets
        except ImportError:
            raise DataError(
                "hf:PATH needs the Hugging Face datasets library: pip install 'tunix-datasets[hf]'"
            ) from None
        if not path.exists():
            raise DataError(
                f"{path}: no such file or folder (hf:PATH reads local parquet/arrow files or "
                "save_to_disk folders; nothing is downloaded)"
            )
        try:
            if path.is_dir():
                loaded = datasets.load_from_disk(str(path))
            elif path.suffix == ".parquet":
                loaded = datasets.Dataset.from_parquet(str(path))
            elif path.suffix == ".arrow":
                loaded = datasets.Dataset.from_file(str(path))
            elif path.suffix in (".json", ".jsonl"):
                loaded = datasets.Dataset.from_json(str(path))
            else:
                raise DataError(
                    f"{path}: expected a .parquet, .arrow, .json or .jsonl file or a "
                    "save_to_disk folder"
                )
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot read as a Hugging Face dataset: {exc}") from None
        if isinstance(loaded, datasets.DatasetDict):
            return {name: _hf_rows(part, f"{path}[{name}]") for name, part in loaded.items()}
        return _hf_rows(loaded, str(path))


def _hf_rows(dataset: Any, where: str) -> Rows:
    return [(f"{where} row {i}", row) for i, row in enumerate(dataset, start=1)]
