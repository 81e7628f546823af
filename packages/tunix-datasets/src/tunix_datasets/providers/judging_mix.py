"""``judging-mix``: a held-out suite shaped like the competition's grading, 142 prompts
written for tunix in seven domains (``meta.category``): ``creative_writing``,
``ideation``, ``summarisation`` (the passage is in the prompt), ``math``, ``science``,
``coding`` and ``other``.

Evaluation only: its one split is ``eval``; nothing here is for training. Each line of
``data/judging_mix.jsonl`` is one item: ``id``, ``domain``, ``question`` and either

- an ``answer`` with the ``answer_match`` check that judges it (``number``, ``casefold``,
  ``exact``, ``yes_no``, ``list``; ``code`` with ``entry_point`` and a ``test`` holding
  ``check(candidate)``, which the opt-in ``code-exec`` evaluator runs), in section
  ``verifiable``; or
- a ``rubric``: ``must`` (what a good answer contains, at least one point) and ``avoid``
  (what it must not do), in section ``open``. The rubric is the item's expected text and
  its ``meta.extra.rubric``; its answer check is ``rubric``, which marks the item
  not correct until a judge model scores it (the ``judging-mix`` evaluator says so).

Items are validated when loaded: an item with neither an answer nor a rubric, or with a
malformed one, stops the load with one line naming the file, line and id. A test pins the
file's sha256; changing an item changes :data:`VERSION`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import attrs

from tunix_core.data.code import ENTRY_POINT, TASK_ID, TEST
from tunix_core.data.record import ExampleMeta, FieldError, ReasoningExample
from tunix_core.data.splits import check_request
from tunix_core.errors import DataError
from tunix_core.protocols import AnswerOptions, AnswerVerdict, TransformRegistry

NAME = "judging-mix"
VERSION = "1.0.0"
SPLITS = ("eval",)
DATA_FILE = "judging_mix.jsonl"
DOMAINS = ("creative_writing", "ideation", "summarisation", "math", "science", "coding",
           "other")  # fmt: skip
VERIFIABLE, OPEN = "verifiable", "open"
RUBRIC_CHECK = "rubric"
RUBRIC = "rubric"  # the meta.extra name of an open item's rubric text
# Reasoning is required by the record; held-out items have none to learn from.
NO_REASONING = "Held-out evaluation item: no reference reasoning."
_KEYS = {"id", "domain", "question", "answer", "answer_match", "rubric", "entry_point", "test"}


@attrs.frozen
class JudgingMixOptions:
    """The suite takes no options."""


def data_path() -> Path:
    """The packaged item file."""
    return Path(str(files("tunix_datasets").joinpath("data", DATA_FILE)))


def rubric_text(rubric: Mapping[str, Sequence[str]]) -> str:
    """The rubric as one text: what a good answer must contain, then what it must avoid."""
    lines = ["A good answer must:", *(f"- {point}" for point in rubric["must"])]
    if rubric["avoid"]:
        lines += ["It must avoid:", *(f"- {point}" for point in rubric["avoid"])]
    return "\n".join(lines)


def _strings(value: Any, field: str, *, required: bool) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise FieldError(field, "must be a list of non-empty strings")
    if required and not value:
        raise FieldError(field, "must hold at least one point")
    return value


def item_to_example(data: Any) -> ReasoningExample:
    """One line of the item file as a record; :class:`FieldError` names what is wrong."""
    if not isinstance(data, dict):
        raise FieldError("item", f"must be a JSON object, got {type(data).__name__}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise FieldError(unknown[0], "unknown field")
    domain = data.get("domain")
    if domain not in DOMAINS:
        raise FieldError("domain", f"must be one of {', '.join(DOMAINS)}, got {domain!r}")
    has_answer, has_rubric = "answer" in data, "rubric" in data
    if has_answer == has_rubric:
        raise FieldError(
            "answer", "the item has neither an answer nor a rubric" if not has_answer
            else "give an answer or a rubric, not both",
        )  # fmt: skip
    extra: dict[str, str] = {}
    if has_rubric:
        rubric = data["rubric"]
        if not isinstance(rubric, dict) or set(rubric) != {"must", "avoid"}:
            raise FieldError("rubric", "must be an object with 'must' and 'avoid' lists")
        _strings(rubric["must"], "rubric.must", required=True)
        _strings(rubric["avoid"], "rubric.avoid", required=False)
        answer, check, section = rubric_text(rubric), RUBRIC_CHECK, OPEN
        extra[RUBRIC] = answer
    else:
        named = data.get("answer_match")
        if not isinstance(named, str):
            raise FieldError("answer_match", "an item with an answer must name its answer check")
        answer, check, section = data["answer"], named, VERIFIABLE
        if check == "code":
            for key in ("entry_point", "test"):
                if not isinstance(data.get(key), str):
                    raise FieldError(key, "a code item needs its entry point and its tests")
            extra = {TASK_ID: data["id"], ENTRY_POINT: data["entry_point"], TEST: data["test"]}
    return ReasoningExample(
        id=data["id"],
        question=data["question"],
        steps=(),
        reasoning=NO_REASONING,
        answer=answer,
        meta=ExampleMeta(
            category=domain,
            section=section,
            difficulty="medium",
            source=f"tunix judging-mix {VERSION}",
            answer_match=check,
            extra=extra,
        ),
    )


def load_items(path: Path) -> tuple[ReasoningExample, ...]:
    """Every item in ``path``, validated; errors say ``FILE:LINE: item 'ID': problem``."""
    examples: list[ReasoningExample] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not JSON ({exc.msg})") from None
        item_id = data.get("id") if isinstance(data, dict) else None
        try:
            example = item_to_example(data)
        except FieldError as exc:
            raise DataError(f"{where}: item {item_id!r}: {exc}") from None
        if example.id in seen:
            raise DataError(f"{where}: item {example.id!r}: id already used on line "
                            f"{seen[example.id]}")  # fmt: skip
        seen[example.id] = number
        examples.append(example)
    return tuple(examples)


@lru_cache(maxsize=1)
def packaged_items() -> tuple[ReasoningExample, ...]:
    return load_items(data_path())


class JudgingMix:
    """The held-out judging-mix suite (see the module docstring)."""

    description = "142 held-out prompts in the competition's seven domains (eval only)"
    version = VERSION

    def splits(self) -> Sequence[str]:
        return SPLITS

    def load(
        self,
        split: str,
        *,
        argument: str | None,
        seed: int,
        options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[ReasoningExample]:
        check_request(NAME, split, argument, options, JudgingMixOptions, SPLITS)
        return list(packaged_items())


class RubricCheck:
    """The ``rubric`` answer check: an open item is never correct by string match; only a
    judge model scores it against its rubric."""

    def __call__(self, answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
        return AnswerVerdict(False, "rubric_needs_judge")


check_rubric = RubricCheck()
