"""Reading the competition format back out of a model's completion.

``parse_completion`` is strict about what counts as the exact format (one reasoning
block, then one answer block, nothing but whitespace around them) and lenient about
extraction, so evaluation can score answers and report format problems separately.
"""

from __future__ import annotations

import re

import attrs

from tunix_core.data.render import END_OF_TURN

_TAG = re.compile(r"<(/?)(reasoning|answer)>")


@attrs.frozen
class ParsedCompletion:
    """What a completion says and how well it follows the format.

    ``reasoning``/``answer``: the trimmed text of the first complete reasoning block and
    of the last complete answer block (a model that corrects itself is scored on its last
    word), or ``None``. ``has_reasoning``/``has_answer``: a complete block of that kind
    exists anywhere. ``format_exact``: no problems at all. ``problems``: what is wrong,
    in the order found.
    """

    reasoning: str | None
    answer: str | None
    format_exact: bool
    has_reasoning: bool
    has_answer: bool
    problems: tuple[str, ...]


@attrs.frozen
class _Block:
    kind: str
    content: str


def parse_completion(text: str) -> ParsedCompletion:
    """Parse a completion (model output after the prompt), with or without a final
    ``<end_of_turn>``."""
    problems: list[str] = []
    body = text
    end = body.find(END_OF_TURN)
    if end != -1:
        if body[end + len(END_OF_TURN) :].strip():
            problems.append(f"text after {END_OF_TURN}")
        body = body[:end]

    blocks: list[_Block] = []
    open_tags: list[tuple[str, int]] = []  # (kind, where its content starts)
    top_level: list[str] = []  # depth-0 blocks in order of opening; "text" for stray text
    unclosed: list[str] = []
    position = 0
    for match in _TAG.finditer(body):
        closing, kind = match.group(1) == "/", match.group(2)
        if not open_tags and body[position : match.start()].strip():
            top_level.append("text")
        position = match.end()
        if not closing:
            if not open_tags:
                top_level.append(kind)
            else:
                problems.append(f"nested tags: <{kind}> inside <{open_tags[-1][0]}>")
            open_tags.append((kind, match.end()))
            continue
        if kind not in (k for k, _ in open_tags):
            problems.append(f"</{kind}> without <{kind}>")
            continue
        while open_tags[-1][0] != kind:
            unclosed.append(open_tags.pop()[0])
        _, start = open_tags.pop()
        blocks.append(_Block(kind, body[start : match.start()].strip()))
    unclosed.extend(kind for kind, _ in reversed(open_tags))
    problems.extend(f"unclosed <{kind}>" for kind in unclosed)
    if not open_tags and body[position:].strip():
        top_level.append("text")

    reasonings = [b for b in blocks if b.kind == "reasoning"]
    answers = [b for b in blocks if b.kind == "answer"]
    if not reasonings and "reasoning" not in unclosed:
        problems.append("missing reasoning block")
    elif len(reasonings) > 1:
        problems.append(f"{len(reasonings)} reasoning blocks")
    if not answers and "answer" not in unclosed:
        problems.append("missing answer block")
    elif len(answers) > 1:
        problems.append(f"{len(answers)} answer blocks")
    if reasonings and not reasonings[0].content:
        problems.append("empty reasoning")
    if answers and not answers[-1].content:
        problems.append("empty answer")
    problems.extend(_layout_problems(top_level))

    return ParsedCompletion(
        reasoning=reasonings[0].content if reasonings else None,
        answer=answers[-1].content if answers else None,
        format_exact=not problems,
        has_reasoning=bool(reasonings),
        has_answer=bool(answers),
        problems=tuple(dict.fromkeys(problems)),
    )


def _layout_problems(top_level: list[str]) -> list[str]:
    """Stray text and block order, given the depth-0 blocks (by opening tag) and texts."""
    problems: list[str] = []
    blocks = [item for item in top_level if item != "text"]
    for index, item in enumerate(top_level):
        if item != "text":
            continue
        before = [b for b in top_level[:index] if b != "text"]
        after = [b for b in top_level[index + 1 :] if b != "text"]
        if not before and not after:
            problems.append("text outside any block")
        elif not before:
            problems.append(f"text before <{after[0]}>")
        elif not after:
            problems.append(f"text after </{before[-1]}>")
        else:
            problems.append(f"text between </{before[-1]}> and <{after[0]}>")
    if (
        "reasoning" in blocks
        and "answer" in blocks
        and blocks.index("answer") < blocks.index("reasoning")
    ):
        problems.append("answer before reasoning")
    return problems
