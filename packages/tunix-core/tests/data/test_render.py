from __future__ import annotations

from tunix_core.config import DEFAULT_SYSTEM_PROMPT
from tunix_core.data.parse import parse_completion
from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.data.render import (
    END_OF_TURN,
    MODEL_TURN,
    RenderedExample,
    render_completion,
    render_example,
    render_prompt,
)

EXAMPLE = ReasoningExample(
    id="ex-1",
    question="What is 17 + 25?",
    steps=("ones: 7 + 5 = 12, write 2 carry 1", "tens: 1 + 2 + 1 = 4", "17 + 25 = 42"),
    answer="42",
    meta=ExampleMeta("addition"),
)


def test_rendered_example_is_exactly_the_competition_format() -> None:
    rendered = render_example(EXAMPLE, system_prompt="Be brief.")
    assert rendered.text == (
        "<start_of_turn>user\nBe brief.\n\nWhat is 17 + 25?<end_of_turn>\n"
        "<start_of_turn>model\n"
        "<reasoning>ones: 7 + 5 = 12, write 2 carry 1\ntens: 1 + 2 + 1 = 4\n17 + 25 = 42</reasoning>"
        "<answer>42</answer><end_of_turn>"
    )


def test_prompt_and_completion_split_where_the_model_turn_starts() -> None:
    rendered = render_example(EXAMPLE)
    assert rendered.prompt.endswith("<start_of_turn>model\n")
    assert rendered.prompt.endswith(MODEL_TURN)
    assert rendered.completion.startswith("<reasoning>")
    assert rendered.completion.endswith("</answer><end_of_turn>")
    assert rendered.completion.count(END_OF_TURN) == 1
    assert rendered.text == rendered.prompt + rendered.completion
    assert "<bos>" not in rendered.text
    assert rendered.id == "ex-1"


def test_default_system_prompt_is_the_config_default() -> None:
    assert (
        render_prompt("Q?")
        == f"<start_of_turn>user\n{DEFAULT_SYSTEM_PROMPT}\n\nQ?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert render_example(EXAMPLE).prompt == render_prompt(EXAMPLE.question, DEFAULT_SYSTEM_PROMPT)


def test_empty_system_prompt_leaves_only_the_question() -> None:
    assert render_prompt("Q?", "") == "<start_of_turn>user\nQ?<end_of_turn>\n<start_of_turn>model\n"


def test_question_whitespace_is_kept_verbatim() -> None:
    assert "\n\n  a\tb  <end_of_turn>" in render_prompt("  a\tb  ", "S")


def test_completion_parses_back_exactly() -> None:
    parsed = parse_completion(render_completion(EXAMPLE.steps, EXAMPLE.answer))
    assert parsed.format_exact
    assert parsed.reasoning == "\n".join(EXAMPLE.steps)
    assert parsed.answer == "42"


def test_rendered_example_is_a_value() -> None:
    assert RenderedExample("a", "p", "c").text == "pc"
