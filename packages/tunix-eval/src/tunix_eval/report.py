"""Plain-text tables of an evaluation summary (what ``tunix eval`` prints), and the
judging-mix scorecard's tables that ``tunix eval``, ``tunix runs show`` and the report
share."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from tunix_eval.judging_mix import Figure, Scorecard, read_scorecard

# (title, header, rows): a table of cells not yet escaped for where they are shown.
Table = tuple[str, list[str], list[list[str]]]

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


def figure_text(figure: Figure | None) -> str:
    """A scorecard figure with its standard error (``66.7% ± 27.2%``, ``3.67 ± 0.88``),
    why it is absent (``no judge``), or ``-``."""
    if figure is None or figure.value is None:
        return figure.absent if figure is not None and figure.absent else "-"
    if figure.is_rate:
        value, stderr = pct(figure.value), pct(figure.stderr)
    else:
        value, stderr = f"{figure.value:.2f}", f"{figure.stderr or 0.0:.2f}"
    return value if figure.stderr is None else f"{value} ± {stderr}"


def scorecard_tables(scorecard: Scorecard) -> list[Table]:
    """The scorecard as tables, a row per group (overall, then each domain): its figures
    with their standard errors, then the share each reference-free check flagged."""
    columns = scorecard.columns()
    tables: list[Table] = []
    for title, chosen in (
        ("judging-mix by domain (± standard error)",
         [f for f in columns if not f.reference_free]),
        ("reference-free checks: share flagged (± standard error)",
         [f for f in columns if f.reference_free]),
    ):  # fmt: skip
        if not chosen:
            continue
        header = ["domain", "items", "open", *(f.label for f in chosen)]
        rows = [[name, str(group.items), str(group.open),
                 *(figure_text(group.figure(f.name)) for f in chosen)]
                for name, group in scorecard.groups.items()]  # fmt: skip
        tables.append((title, header, rows))
    return tables


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], indent: str) -> list[str]:
    """Lines of a table: the first column left-aligned, the others right-aligned."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [(indent + "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                                for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
            .rstrip() for row in table]  # fmt: skip


def scorecard_lines(scorecard: Scorecard, indent: str = "  ") -> list[str]:
    """A judging-mix scorecard as text tables, then its notes."""
    lines: list[str] = []
    for title, header, rows in scorecard_tables(scorecard):
        lines += [f"{indent}{title}:", *text_table(header, rows, indent + "  ")]
    return lines + [f"{indent}note: {note}" for note in scorecard.notes]


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
    scorecard = read_scorecard(summary)
    if scorecard is not None:
        lines += scorecard_lines(scorecard)
    return printable("\n".join(lines))
