"""Built-in row transforms (``dataset.options.transform`` of ``jsonl:`` and ``hf:``).

A transform turns one row of a source into a row in the tunix record schema; plugins add
their own through the ``tunix_register_transforms`` hook (docs/hooks.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tunix_core.data.record import FieldError
from tunix_core.protocols import TransformRegistry

# GSM8K's calculator annotations, e.g. ``<<48/2=24>>``: tool calls of its authors' setup,
# not reasoning a model should learn to write.
_CALCULATOR = re.compile(r"<<[^<>]*>>")
_FINAL_ANSWER = "####"


def gsm8k(row: Mapping[str, Any]) -> dict[str, Any]:
    """GSM8K's ``answer`` column (``"steps...\\n#### 42"``) split into ``reasoning`` (the
    solution text without its calculator annotations) and ``answer`` (what follows the
    last ``####``). The other columns pass through."""
    solution = row.get("answer")
    if not isinstance(solution, str):
        raise FieldError("answer", f"must be GSM8K's solution text, got {type(solution).__name__}")
    body, marker, final = solution.rpartition(_FINAL_ANSWER)
    if not marker:
        raise FieldError("answer", "has no '#### ANSWER' line (is this GSM8K's answer column?)")
    reasoning = _CALCULATOR.sub("", body).strip()
    if not reasoning:
        raise FieldError("answer", "has no solution text before '####'")
    return {**row, "reasoning": reasoning, "answer": final.strip()}


BUILTIN_TRANSFORMS = (
    ("gsm8k", "tunix_datasets.transforms:gsm8k",
     "GSM8K rows: the answer column's solution becomes reasoning (calculator annotations "
     "removed), the text after '####' the answer"),
)  # fmt: skip


def register_builtin_transforms(registry: TransformRegistry) -> None:
    """Register every built-in transform (what the plugin's hook does)."""
    for name, target, description in BUILTIN_TRANSFORMS:
        registry.register(name, target, description=description)
