"""Items whose answer is Python code: the ``meta.extra`` names such an item carries (the
contract between a code dataset, its answer check and the ``code-exec`` evaluator) and the
code read from an answer."""

from __future__ import annotations

import re

TASK_ID, ENTRY_POINT, CODE_PROMPT, TEST = "task_id", "entry_point", "code_prompt", "test"
_FENCE = re.compile(r"\A```[\w+-]*[ \t]*\n(.*?)\n?```\Z", re.S)


def answer_code(answer: str) -> str:
    """The code in an answer: the answer itself, or the inside of the one Markdown fence
    (```` ```python ... ``` ````) that wraps all of it, as models often write."""
    text = answer.strip()
    fenced = _FENCE.match(text)
    return fenced.group(1) if fenced else text
