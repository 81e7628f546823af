"""Parsing a completion takes time and memory linear in its length, whatever tag soup a
model emits until max_new_tokens."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from tunix_core.data.parse import parse_completion

LENGTH = 200_000

# Each took time quadratic in its length before (about 5 s at this length).
SLOW_BEFORE = {
    # Every closing tag searched the whole stack of open tags.
    "opens then stray closes": "<reasoning>" * (LENGTH // 20) + "</answer>" * (LENGTH // 20),
    # Every stray text scanned all blocks before and after it.
    "text between many blocks": "x<answer>1</answer>" * (LENGTH // 19),
}


@pytest.mark.parametrize("completion", SLOW_BEFORE.values(), ids=SLOW_BEFORE.keys())
def test_hostile_tag_soup_parses_in_well_under_a_second(completion: str):
    start = time.perf_counter()
    parsed = parse_completion(completion)
    assert time.perf_counter() - start < 1.0
    assert not parsed.format_exact


def test_deeply_nested_blocks_do_not_copy_the_text_per_block():
    depth = 80_000 // 23
    completion = "<reasoning>" * depth + " why " + "</reasoning>" * depth
    tracemalloc.start()
    try:
        parsed = parse_completion(completion)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # was 140 MB: each block kept a copy of its content
    assert parsed.reasoning == "why"  # the innermost block closes first
    assert f"{depth} reasoning blocks" in parsed.problems
