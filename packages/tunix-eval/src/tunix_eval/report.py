"""Plain-text tables of an evaluation summary (what ``tunix eval`` prints)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
    return "\n".join(lines)
