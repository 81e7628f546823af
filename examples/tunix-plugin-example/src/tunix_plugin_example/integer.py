"""An answer check: the expected whole number, in plain digits and nothing else."""

from __future__ import annotations

import re

from tunix_core.protocols import AnswerOptions, AnswerVerdict

_INTEGER = re.compile(r"-?\d+")


def integer(answer: str, expected: str, options: AnswerOptions) -> AnswerVerdict:
    """``integer``: "15" for 15; not "15.0", "fifteen" or "15 points". Surrounding
    whitespace and a final period are ignored."""
    if not _INTEGER.fullmatch(expected):
        raise ValueError(f"the expected answer must be a whole number, got {expected!r}")
    text = answer.strip().removesuffix(".").strip()
    if not text:
        return AnswerVerdict(False, "empty")
    return AnswerVerdict(bool(_INTEGER.fullmatch(text)) and int(text) == int(expected), "integer")
