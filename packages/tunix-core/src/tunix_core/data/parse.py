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
    """A complete block: its kind and where its content lies in the body. Only the blocks
    that are reported get sliced: nested blocks would otherwise copy the text over and over."""

    kind: str
    start: int
    end: int


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
    open_count = {"reasoning": 0, "answer": 0}  # of each kind in open_tags, looked up in O(1)
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
            open_count[kind] += 1
            continue
        if not open_count[kind]:
            problems.append(f"</{kind}> without <{kind}>")
            continue
        while open_tags[-1][0] != kind:
            inner_kind, _ = open_tags.pop()
            open_count[inner_kind] -= 1
            unclosed.append(inner_kind)
        _, start = open_tags.pop()
        open_count[kind] -= 1
        blocks.append(_Block(kind, start, match.start()))
    unclosed.extend(kind for kind, _ in reversed(open_tags))
    problems.extend(f"unclosed <{kind}>" for kind in unclosed)
    if not open_tags and body[position:].strip():
        top_level.append("text")

    reasonings = [b for b in blocks if b.kind == "reasoning"]
    answers = [b for b in blocks if b.kind == "answer"]
    reasoning = body[reasonings[0].start : reasonings[0].end].strip() if reasonings else None
    answer = body[answers[-1].start : answers[-1].end].strip() if answers else None
    if not reasonings and "reasoning" not in unclosed:
        problems.append("missing reasoning block")
    elif len(reasonings) > 1:
        problems.append(f"{len(reasonings)} reasoning blocks")
    if not answers and "answer" not in unclosed:
        problems.append("missing answer block")
    elif len(answers) > 1:
        problems.append(f"{len(answers)} answer blocks")
    if reasoning == "":
        problems.append("empty reasoning")
    if answer == "":
        problems.append("empty answer")
    problems.extend(_layout_problems(top_level))

    return ParsedCompletion(
        reasoning=reasoning,
        answer=answer,
        format_exact=not problems,
        has_reasoning=bool(reasonings),
        has_answer=bool(answers),
        problems=tuple(dict.fromkeys(problems)),
    )


def _layout_problems(top_level: list[str]) -> list[str]:
    """Stray text and block order, given the depth-0 blocks (by opening tag) and texts."""
    problems: list[str] = []
    blocks = [item for item in top_level if item != "text"]
    # The block after each item, found in one pass from the end (not a scan per text).
    next_block: list[str | None] = [None] * len(top_level)
    following: str | None = None
    for index in range(len(top_level) - 1, -1, -1):
        next_block[index] = following
        if top_level[index] != "text":
            following = top_level[index]
    previous: str | None = None
    for index, item in enumerate(top_level):
        if item != "text":
            previous = item
            continue
        after = next_block[index]
        if previous is None and after is None:
            problems.append("text outside any block")
        elif previous is None:
            problems.append(f"text before <{after}>")
        elif after is None:
            problems.append(f"text after </{previous}>")
        else:
            problems.append(f"text between </{previous}> and <{after}>")
    if (
        "reasoning" in blocks
        and "answer" in blocks
        and blocks.index("answer") < blocks.index("reasoning")
    ):
        problems.append("answer before reasoning")
    return problems
