"""Plain-text tables of an evaluation summary (what ``tunix eval`` prints)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# C0 and C1 control characters and DEL (a terminal escape code starts with ESC) and the
# bidirectional overrides and isolates, which reorder what a reader sees.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str, *, keep: str = "\n") -> str:
    """``text`` with every control character but those in ``keep`` written as its escape
    (``\\x1b``), so a category, id or label from a file cannot drive the terminal (or
    break a page) it is shown in."""

    def shown(match: re.Match[str]) -> str:
        char = match.group()
        return char if char in keep else char.encode("unicode_escape").decode("ascii")

    return _CONTROL.sub(shown, text)


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_summary(summary: Mapping[str, Any]) -> str:
    """The headline numbers and the scorecard by section, category and difficulty."""
    counts = summary["counts"]
    scorecard = summary["scorecard"]
    overall = scorecard["overall"]
    lines = [
        f"Evaluation '{summary['label']}': {counts['items']} item(s)",
        f"  answer accuracy (primary score)  {pct(summary['primary_score'])} "
        f"± {pct(summary['primary_score_stderr'])}  ({counts['correct']}/{counts['items']})",
        f"  format compliance                {pct(overall['format_compliance'])} "
        f"± {pct(overall['format_compliance_stderr'])}  ({counts['format_ok']}/{counts['items']})",
        f"  answered                         {pct(counts['answered'] / counts['items'])}",
    ]
    for key in ("section", "category", "difficulty"):
        groups = scorecard[f"by_{key}"]
        if len(groups) < 2 and key != "category":
            continue
        lines.append(f"  by {key}:")
        width = max(len(name) for name in groups)
        for name, group in groups.items():
            lines.append(
                f"    {name:<{width}}  n={group['n']:<4} accuracy {pct(group['answer_accuracy']):>6}"
                f"  format {pct(group['format_compliance']):>6}"
            )
    return printable("\n".join(lines))
