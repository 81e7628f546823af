"""The reasoning-trace record and its JSONL form.

One example is a question, the steps that solve it (or one free-form ``reasoning`` text,
kept byte for byte: code blocks and indentation survive) and a canonical answer, plus
metadata (category, section, difficulty, source) that evaluation groups scores by, and
``answer_match``: the name of the answer check that judges a model's answer to it
(``auto`` unless the item needs a stricter one, docs/evaluation.md), and ``extra``: named
texts an evaluator or answer check reads (HumanEval's tests). Invalid records are refused
when they are built; errors read from a file name the file, the line and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.errors import DataError
from tunix_core.jsonio import (
    LONE_SURROGATE,
    LONE_SURROGATE_PROBLEM,
    read_user_jsonl,
    write_text_atomic,
)
from tunix_core.registry import ANSWER_CHECK_NAME

DIFFICULTIES = ("easy", "medium", "hard")
DEFAULT_ANSWER_MATCH = "auto"
# Markup of the competition format; inside a record it would make a rendered example
# ambiguous to parse back.
RESERVED_MARKUP = (
    "<reasoning>",
    "</reasoning>",
    "<answer>",
    "</answer>",
    "<start_of_turn>",
    "<end_of_turn>",
)


class FieldError(ValueError):
    """A record field broke a rule; ``field`` is its dotted path (``meta.category``, ``steps[2]``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field '{field}': {problem}")
        self.field = field
        self.problem = problem


def _check_encodable(field: str, value: str) -> None:
    # A Python string can hold a lone surrogate (a provider's own text); no file can.
    if LONE_SURROGATE.search(value):
        raise FieldError(field, LONE_SURROGATE_PROBLEM)


def _check_text(field: str, value: Any, *, allow_edge_space: bool = False) -> None:
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, got {type(value).__name__}")
    _check_encodable(field, value)
    if not value.strip():
        raise FieldError(field, "must not be empty")
    if not allow_edge_space and value != value.strip():
        raise FieldError(field, "must not start or end with whitespace")
    for markup in RESERVED_MARKUP:
        if markup in value:
            raise FieldError(field, f"must not contain the format markup {markup!r}")


def _text(allow_edge_space: bool = False) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        _check_text(attribute.name, value, allow_edge_space=allow_edge_space)

    return check


def _difficulty(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value not in DIFFICULTIES:
        raise FieldError(attribute.name, f"must be one of {', '.join(DIFFICULTIES)}, got {value!r}")


def _source(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise FieldError(attribute.name, f"must be a string, got {type(value).__name__}")
    _check_encodable(attribute.name, value)


def _answer_match(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, str):
        raise FieldError(attribute.name, f"must be a string, got {type(value).__name__}")
    if not ANSWER_CHECK_NAME.fullmatch(value):
        raise FieldError(
            attribute.name,
            f"must name an answer check (lowercase letters, digits, '_' or '-'), got {value!r}",
        )


def _steps(example: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, tuple):
        raise FieldError("steps", f"must be a list of strings, got {type(value).__name__}")
    if example.reasoning is not None:
        if value:
            raise FieldError("steps", "give steps or reasoning, not both")
        return
    if not value:
        raise FieldError(
            "steps", "must hold at least one step, or give reasoning (the text to learn from)"
        )
    for index, step in enumerate(value):
        _check_text(f"steps[{index}]", step)
        if "\n" in step or "\r" in step:
            raise FieldError(f"steps[{index}]", "must be one line (steps are joined with newlines)")


def _reasoning(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # Free-form text is kept exactly as given: edge whitespace may be an indented code line.
    if value is not None:
        _check_text(attribute.name, value, allow_edge_space=True)


# Names of meta.extra: identifier-like, so they read the same flattened into a prediction's
# meta (docs/evaluation.md) and in a record.
EXTRA_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _extra(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, dict):
        raise FieldError(attribute.name, f"must be an object, got {type(value).__name__}")
    for key, text in value.items():
        if not isinstance(key, str) or not EXTRA_NAME.fullmatch(key):
            raise FieldError(
                attribute.name, f"names must be lowercase letters, digits or '_', got {key!r}"
            )
        if key in _META_FIELDS:
            raise FieldError(f"{attribute.name}.{key}", "is a meta field of its own, not an extra")
        if not isinstance(text, str):
            raise FieldError(f"{attribute.name}.{key}", f"must be a string, got {type(text).__name__}")
        _check_encodable(f"{attribute.name}.{key}", text)


def _as_dict(value: Any) -> Any:
    # A mapping is copied, so a frozen record never shares a dict with its caller.
    return dict(value) if isinstance(value, Mapping) else value


def _as_tuple(value: Any) -> Any:
    # A string is a sequence too; leave it for the validator to refuse.
    if isinstance(value, list | tuple):
        return tuple(value)
    return value


@attrs.frozen
class ExampleMeta:
    """Where an example comes from and how evaluation groups it."""

    category: str = attrs.field(validator=_text())
    section: str = attrs.field(default="core", validator=_text())
    difficulty: str = attrs.field(default="easy", validator=_difficulty)
    source: str = attrs.field(default="", validator=_source)
    # Whether the name is an installed check is known only to the plugin host; it is
    # checked before anything is scored (tunix_core.evaluation.require_answer_checks).
    answer_match: str = attrs.field(default=DEFAULT_ANSWER_MATCH, validator=_answer_match)
    # What an evaluator or answer check needs beyond the answer (HumanEval's tests, the
    # reasoning-gym entry a scorer re-reads): name -> text. Left out of the hash: a dict
    # cannot be hashed, and equal records still hash equal without it.
    extra: dict[str, str] = attrs.field(
        factory=dict, kw_only=True, converter=_as_dict, validator=_extra, hash=False
    )


@attrs.frozen
class ReasoningExample:
    """A question, the reasoning that solves it, and its canonical answer.

    The reasoning is either ``steps`` (trimmed single lines, joined with newlines when
    rendered) or ``reasoning``, one free-form text kept byte for byte (then ``steps`` is
    empty). The question may carry odd whitespace (edge cases test it); the answer is a
    trimmed text, and no field contains the competition's markup.
    """

    id: str = attrs.field(validator=_text())
    question: str = attrs.field(validator=_text(allow_edge_space=True))
    steps: tuple[str, ...] = attrs.field(converter=_as_tuple, validator=_steps)
    answer: str = attrs.field(validator=_text())
    meta: ExampleMeta = attrs.field(validator=attrs.validators.instance_of(ExampleMeta))
    reasoning: str | None = attrs.field(default=None, kw_only=True, validator=_reasoning)

    @property
    def reasoning_text(self) -> str:
        """What goes inside ``<reasoning>``: the free-form text, or the steps one per line."""
        return self.reasoning if self.reasoning is not None else "\n".join(self.steps)


_FIELDS = ("id", "question", "steps", "reasoning", "answer", "meta")
# A record holds one of them: a list of steps or one free-form reasoning text.
_REASONING_FIELDS = ("steps", "reasoning")
_META_FIELDS = ("category", "section", "difficulty", "source", "answer_match", "extra")


def example_to_dict(example: ReasoningExample) -> dict[str, Any]:
    """Plain data in a fixed key order (so exports are byte-stable). ``meta.answer_match``
    is written only when it is not ``auto``, so records that do not set it export exactly
    as they did before the field existed, and ``meta.extra`` (sorted by name) only when it
    holds something; likewise a record writes ``steps`` or ``reasoning``, whichever it
    holds."""
    meta: dict[str, Any] = {
        "category": example.meta.category,
        "section": example.meta.section,
        "difficulty": example.meta.difficulty,
        "source": example.meta.source,
    }
    if example.meta.answer_match != DEFAULT_ANSWER_MATCH:
        meta["answer_match"] = example.meta.answer_match
    if example.meta.extra:
        meta["extra"] = dict(sorted(example.meta.extra.items()))
    reasoning: dict[str, Any] = (
        {"steps": list(example.steps)}
        if example.reasoning is None
        else {"reasoning": example.reasoning}
    )
    return {
        "id": example.id,
        "question": example.question,
        **reasoning,
        "answer": example.answer,
        "meta": meta,
    }


def example_from_dict(data: Any) -> ReasoningExample:
    """Build a record from plain data, strictly: every top-level field is required (of
    ``steps`` and ``reasoning`` exactly one), unknown keys are refused, ``meta.category``
    is required and the other meta fields have defaults.

    Raises :class:`FieldError` naming the field; callers add the file and line.
    """
    if not isinstance(data, Mapping):
        raise FieldError("record", f"must be a JSON object, got {type(data).__name__}")
    for key in data:
        if key not in _FIELDS:
            raise FieldError(str(key), f"unknown field (expected {', '.join(_FIELDS)})")
    for key in _FIELDS:
        if key not in data and key not in _REASONING_FIELDS:
            raise FieldError(key, "is required")
    given = [key for key in _REASONING_FIELDS if key in data]
    if len(given) != 1:
        problem = "give steps or reasoning, not both" if given else "is required (or reasoning)"
        raise FieldError("steps", problem)
    meta = data["meta"]
    if not isinstance(meta, Mapping):
        raise FieldError("meta", f"must be an object, got {type(meta).__name__}")
    for key in meta:
        if key not in _META_FIELDS:
            raise FieldError(f"meta.{key}", f"unknown field (expected {', '.join(_META_FIELDS)})")
    if "category" not in meta:
        raise FieldError("meta.category", "is required")
    steps = data.get("steps", ())
    if not isinstance(steps, list | tuple):
        raise FieldError("steps", f"must be a list of strings, got {type(steps).__name__}")
    try:
        example_meta = ExampleMeta(**dict(meta))
    except FieldError as exc:
        raise FieldError(f"meta.{exc.field}", exc.problem) from None
    return ReasoningExample(
        id=data["id"],
        question=data["question"],
        steps=tuple(steps),
        answer=data["answer"],
        meta=example_meta,
        reasoning=data.get("reasoning"),
    )


def check_unique_ids(examples: Sequence[ReasoningExample], where: str) -> None:
    """Raise :class:`DataError` when two examples share an id."""
    seen: dict[str, int] = {}
    for index, example in enumerate(examples):
        if example.id in seen:
            raise DataError(
                f"{where}: items {seen[example.id] + 1} and {index + 1} share the id {example.id!r}"
            )
        seen[example.id] = index


def read_jsonl(path: str | Path) -> list[ReasoningExample]:
    """Read records written by :func:`write_jsonl` (or by hand in the same schema).

    Every line must be a valid record; errors say ``FILE:LINE: field 'NAME': problem``.
    Blank lines are skipped. Ids must be unique within the file.
    """
    path = Path(path)
    examples: list[ReasoningExample] = []
    first_line: dict[str, int] = {}
    for number, data in read_user_jsonl(path):
        try:
            example = example_from_dict(data)
        except FieldError as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
        if example.id in first_line:
            raise DataError(
                f"{path}:{number}: field 'id': {example.id!r} already used on line "
                f"{first_line[example.id]}"
            )
        first_line[example.id] = number
        examples.append(example)
    return examples


def dumps_jsonl(examples: Iterable[ReasoningExample]) -> str:
    """The JSONL text of ``examples``: one object per line, UTF-8 kept as is."""
    return "".join(json.dumps(example_to_dict(e), ensure_ascii=False) + "\n" for e in examples)


def write_jsonl(examples: Iterable[ReasoningExample], path: str | Path) -> None:
    """Write ``examples`` to ``path`` atomically; the same examples give the same bytes."""
    write_text_atomic(Path(path), dumps_jsonl(examples))
