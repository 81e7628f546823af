"""Preference pairs: records with ``prompt``, ``chosen`` and ``rejected``, from a JSONL
file or local Hugging Face data (``trainer.options.pairs``), rendered in the
competition format.

``prompt`` is the question as text, or chat messages (an optional system turn, then one
user turn). ``chosen`` and ``rejected`` are replies as text, or chat messages holding
one assistant turn. A system turn is dropped: every prompt is rendered with the run's
``dataset.system_prompt``, as training and evaluation render it. A reply written as
``<reasoning>…</reasoning><answer>…</answer>`` is rendered as the SFT trainer renders a
record; any other reply (a broken format the model should learn to avoid, say) is kept
as written. Both end with ``<end_of_turn>``. Other columns are ignored. A record without
``chosen`` or ``rejected``, or whose two replies render the same, is refused, naming
the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from tunix_core.data.record import FieldError
from tunix_core.data.render import END_OF_TURN, render_prompt, render_reasoning_completion
from tunix_core.errors import DataError
from tunix_core.jsonio import read_user_jsonl

_FORMATTED_REPLY = re.compile(
    r"\s*<reasoning>(?P<reasoning>.*?)</reasoning>\s*<answer>(?P<answer>.*?)</answer>\s*",
    re.DOTALL,
)


@attrs.frozen
class PreferencePair:
    """One rendered pair: the prompt (user turn and the opening of the model turn) and
    the two completions after it. ``location``: ``FILE:LINE`` or ``PATH row N``."""

    location: str
    prompt: str
    chosen: str
    rejected: str


def _turns(value: list[Any] | tuple[Any, ...], field: str) -> list[tuple[str, str]]:
    turns = []
    for index, turn in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(turn, Mapping):
            raise FieldError(where, f"must be an object, got {type(turn).__name__}")
        role, content = turn.get("role"), turn.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise FieldError(where, "must have a string role and a string content")
        turns.append((role, content))
    return turns


def _question(value: Any) -> str:
    """The user's text of a ``prompt`` (text or chat messages)."""
    if isinstance(value, list | tuple):
        turns = _turns(value, "prompt")
        if turns and turns[0][0] == "system":
            turns = turns[1:]
        if [role for role, _ in turns] != ["user"]:
            raise FieldError(
                "prompt", "as messages, must hold an optional system turn and one user turn"
            )
        value = turns[0][1]
    if not isinstance(value, str):
        raise FieldError("prompt", f"must be text or chat messages, got {type(value).__name__}")
    if not value.strip():
        raise FieldError("prompt", "must not be empty")
    return value


def _reply(value: Any, field: str) -> str:
    """The rendered completion of a ``chosen`` or ``rejected`` reply."""
    if isinstance(value, list | tuple):
        turns = _turns(value, field)
        if [role for role, _ in turns] != ["assistant"]:
            raise FieldError(field, "as messages, must hold one assistant turn")
        value = turns[0][1]
    if not isinstance(value, str):
        raise FieldError(field, f"must be text or chat messages, got {type(value).__name__}")
    text = value.strip().removesuffix(END_OF_TURN).rstrip()
    if not text:
        raise FieldError(field, "must not be empty")
    formatted = _FORMATTED_REPLY.fullmatch(text)
    if formatted:
        return render_reasoning_completion(formatted["reasoning"], formatted["answer"].strip())
    return text + END_OF_TURN


def pair_from_record(record: Any, location: str, system_prompt: str) -> PreferencePair:
    """One record rendered; raises :class:`FieldError` naming the field."""
    if not isinstance(record, Mapping):
        raise FieldError("record", f"must be a JSON object, got {type(record).__name__}")
    for field in ("prompt", "chosen", "rejected"):
        if field not in record:
            raise FieldError(field, "is required (a record holds prompt, chosen and rejected)")
    prompt = render_prompt(_question(record["prompt"]), system_prompt)
    chosen = _reply(record["chosen"], "chosen")
    rejected = _reply(record["rejected"], "rejected")
    if chosen == rejected:
        raise FieldError("rejected", "is the same completion as chosen: nothing to prefer")
    return PreferencePair(location, prompt, chosen, rejected)


def load_pairs(spec: str, system_prompt: str) -> list[PreferencePair]:
    """The pairs of ``spec``: ``PATH`` or ``jsonl:PATH`` (JSON Lines) or ``hf:PATH`` (a
    local parquet, arrow, json or jsonl file or ``save_to_disk`` folder; its ``train``
    split when it has several). Raises :class:`DataError` naming the file and line."""
    if spec.startswith("hf:"):
        path = Path(spec.removeprefix("hf:")).expanduser()
        rows = _hf_rows(path)
    else:
        path = Path(spec.removeprefix("jsonl:")).expanduser()
        rows = [(f"{path}:{number}", value) for number, value in read_user_jsonl(path)]
    if not rows:
        raise DataError(f"{path}: no preference records")
    pairs = []
    for location, record in rows:
        try:
            pairs.append(pair_from_record(record, location, system_prompt))
        except FieldError as exc:
            raise DataError(f"{location}: {exc}") from None
    return pairs


def _hf_rows(path: Path) -> list[tuple[str, Any]]:
    try:
        import datasets
    except ImportError:
        raise DataError(f"hf:{path} needs the Hugging Face datasets library: "
                        "pip install 'tunix-datasets[hf]'") from None  # fmt: skip
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (hf:PATH reads local data only)")
    readers = {".parquet": datasets.Dataset.from_parquet, ".arrow": datasets.Dataset.from_file,
               ".json": datasets.Dataset.from_json, ".jsonl": datasets.Dataset.from_json}  # fmt: skip
    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
        elif path.suffix in readers:
            loaded = readers[path.suffix](str(path))
        else:
            raise DataError(f"{path}: expected a .parquet, .arrow, .json or .jsonl file or a "
                            "save_to_disk folder")  # fmt: skip
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read as a Hugging Face dataset: {exc}") from None
    where = str(path)
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise DataError(f"{path}: has no train split; it has {', '.join(loaded)}")
        loaded, where = loaded["train"], f"{path}[train]"
    return [(f"{where} row {index}", row) for index, row in enumerate(loaded, start=1)]
