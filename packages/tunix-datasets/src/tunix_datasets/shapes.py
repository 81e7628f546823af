"""The row shapes ``jsonl:`` and ``hf:`` read besides tunix records and mapped columns.

``messages``: a chat, ``[{"role": "system"?}, {"role": "user"}, {"role": "assistant"}]``.
``prompt_completion``: ``{"prompt": ..., "completion": ...}``. Either becomes a row with
``question`` (the user turn or prompt) and the reasoning and answer read from the reply:
a reply written as ``<reasoning>…</reasoning><answer>…</answer>`` is split there (the
reasoning kept byte for byte); any other reply is the answer, and the row must then carry
its reasoning in a ``reasoning`` or ``steps`` column. A system turn is dropped: every
item is rendered with the run's ``dataset.system_prompt``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tunix_core.data.record import FieldError

SHAPES = ("auto", "columns", "messages", "prompt_completion")
_REPLY = re.compile(
    r"\s*<reasoning>(?P<reasoning>.*?)</reasoning>\s*<answer>(?P<answer>.*?)</answer>\s*"
    r"(?:<end_of_turn>\s*)?",
    re.DOTALL,
)
_TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")
_CHAT_ROLES = "an optional system turn, then one user turn and one assistant turn"


def detect_shape(row: Mapping[str, Any]) -> str:
    """The shape ``auto`` reads ``row`` as: a row with a ``question`` column is
    ``columns``; otherwise ``messages`` if it has that column, ``prompt_completion`` if it
    has both of those, else ``columns``."""
    if "question" in row:
        return "columns"
    if "messages" in row:
        return "messages"
    if "prompt" in row and "completion" in row:
        return "prompt_completion"
    return "columns"


def split_reply(reply: str, field: str) -> tuple[str | None, str]:
    """``(reasoning, answer)`` of a model reply: the tagged blocks' contents, or ``None``
    and the whole trimmed reply. Tags in any other arrangement are an error."""
    match = _REPLY.fullmatch(reply)
    if match:
        return match["reasoning"], match["answer"].strip()
    if any(tag in reply for tag in _TAGS):
        raise FieldError(
            field,
            "has <reasoning>/<answer> tags but not as one <reasoning>…</reasoning> "
            "followed by one <answer>…</answer>",
        )
    return None, reply.strip()


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, got {type(value).__name__}")
    return value


def _chat_turns(messages: Any) -> tuple[str, str]:
    """The user's text and the assistant's reply, with the roles checked."""
    if not isinstance(messages, list | tuple):
        raise FieldError("messages", f"must be a list of turns, got {type(messages).__name__}")
    roles = []
    for index, turn in enumerate(messages):
        if not isinstance(turn, Mapping):
            raise FieldError(f"messages[{index}]", f"must be an object, got {type(turn).__name__}")
        roles.append(_text(turn.get("role"), f"messages[{index}].role"))
    if roles and roles[0] == "system":
        messages, roles, first = messages[1:], roles[1:], 1
    else:
        first = 0
    if roles == ["user"]:
        raise FieldError("messages", f"has no assistant turn (expected {_CHAT_ROLES})")
    if roles != ["user", "assistant"]:
        got = ", ".join(roles) or "none"
        raise FieldError("messages", f"expected {_CHAT_ROLES}; got roles: {got}")
    question = _text(messages[0].get("content"), f"messages[{first}].content")
    reply = _text(messages[1].get("content"), f"messages[{first + 1}].content")
    return question, reply


def reshape(row: Mapping[str, Any], shape: str) -> tuple[dict[str, Any], dict[str, str]]:
    """``row`` as a tunix-schema row, and the source of each field it filled (so errors
    name ``messages[2].content`` rather than ``answer``). ``columns`` rows pass unchanged."""
    if shape == "auto":
        shape = detect_shape(row)
    if shape == "columns":
        return dict(row), {}
    if shape == "messages":
        question, reply = _chat_turns(row.get("messages"))
        reply_field = f"messages[{len(row['messages']) - 1}].content"
        sources = {"question": f"messages[{len(row['messages']) - 2}].content"}
        rest = {key: value for key, value in row.items() if key != "messages"}
    else:
        for column in ("prompt", "completion"):
            if column not in row:
                raise FieldError(column, "is required (shape prompt_completion)")
        question = _text(row["prompt"], "prompt")
        reply_field, sources = "completion", {"question": "prompt"}
        reply = _text(row["completion"], reply_field)
        rest = {key: value for key, value in row.items() if key not in ("prompt", "completion")}
    reasoning, answer = split_reply(reply, reply_field)
    reshaped = {**rest, "question": question, "answer": answer}
    sources["answer"] = reply_field
    if reasoning is not None:
        if "reasoning" in rest or "steps" in rest:
            raise FieldError(reply_field, "has a <reasoning> block and the row a reasoning "
                             "column too; keep one")  # fmt: skip
        reshaped["reasoning"] = reasoning
        sources["reasoning"] = reply_field
    elif "reasoning" not in rest and "steps" not in rest:
        raise FieldError(
            reply_field,
            "has no <reasoning>…</reasoning><answer>…</answer>, so the whole reply is the "
            "answer, and the row has no reasoning or steps column to learn from",
        )
    return reshaped, sources
