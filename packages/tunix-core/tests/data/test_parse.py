from __future__ import annotations

import pytest

from tunix_core.data.parse import ParsedCompletion, parse_completion


def test_exact_format_with_end_of_turn() -> None:
    parsed = parse_completion("<reasoning>3 + 4 = 7</reasoning><answer>7</answer><end_of_turn>")
    assert parsed == ParsedCompletion("3 + 4 = 7", "7", True, True, True, ())


def test_exact_format_without_end_of_turn_and_with_whitespace_around_blocks() -> None:
    parsed = parse_completion(
        "\n <reasoning>\nstep one\nstep two\n</reasoning>\n<answer> 7 </answer>\n"
    )
    assert parsed.format_exact
    assert parsed.reasoning == "step one\nstep two"
    assert parsed.answer == "7"


def test_unicode_is_kept() -> None:
    parsed = parse_completion("<reasoning>c a f é → é f a c</reasoning><answer>éfac 🙂</answer>")
    assert parsed.format_exact
    assert parsed.answer == "éfac 🙂"


def test_plain_text_has_nothing() -> None:
    parsed = parse_completion("The answer is 7.")
    assert (parsed.reasoning, parsed.answer) == (None, None)
    assert not (parsed.format_exact or parsed.has_reasoning or parsed.has_answer)
    assert parsed.problems == (
        "missing reasoning block",
        "missing answer block",
        "text outside any block",
    )


def test_missing_reasoning() -> None:
    parsed = parse_completion("<answer>7</answer>")
    assert parsed.answer == "7"
    assert parsed.has_answer and not parsed.has_reasoning
    assert parsed.problems == ("missing reasoning block",)


def test_missing_answer_tags() -> None:
    parsed = parse_completion("<reasoning>3 + 4 = 7</reasoning>so 7")
    assert parsed.reasoning == "3 + 4 = 7"
    assert parsed.answer is None
    assert parsed.problems == ("missing answer block", "text after </reasoning>")


def test_unclosed_answer_is_not_an_answer() -> None:
    parsed = parse_completion("<reasoning>r</reasoning><answer>7")
    assert parsed.answer is None and not parsed.has_answer
    assert parsed.problems == ("unclosed <answer>",)


def test_nested_answer_inside_reasoning() -> None:
    parsed = parse_completion("<reasoning>r <answer>6</answer></reasoning><answer>7</answer>")
    assert not parsed.format_exact
    assert "nested tags: <answer> inside <reasoning>" in parsed.problems
    assert "2 answer blocks" in parsed.problems
    assert parsed.answer == "7"


def test_two_answers_keep_the_last_one() -> None:
    parsed = parse_completion("<reasoning>r</reasoning><answer>6</answer><answer>7</answer>")
    assert parsed.answer == "7"
    assert parsed.problems == ("2 answer blocks",)


def test_two_reasoning_blocks_keep_the_first() -> None:
    parsed = parse_completion("<reasoning>a</reasoning><reasoning>b</reasoning><answer>7</answer>")
    assert parsed.reasoning == "a"
    assert parsed.problems == ("2 reasoning blocks",)


@pytest.mark.parametrize("answer", ["", "   ", "\n"])
def test_empty_answer(answer: str) -> None:
    parsed = parse_completion(f"<reasoning>r</reasoning><answer>{answer}</answer>")
    assert parsed.answer == ""
    assert parsed.has_answer
    assert parsed.problems == ("empty answer",)


def test_empty_reasoning() -> None:
    assert parse_completion("<reasoning> </reasoning><answer>7</answer>").problems == (
        "empty reasoning",
    )


def test_text_after_answer() -> None:
    parsed = parse_completion(
        "<reasoning>r</reasoning><answer>7</answer> I hope that helps!<end_of_turn>"
    )
    assert parsed.answer == "7"
    assert parsed.problems == ("text after </answer>",)


def test_text_before_and_between_blocks() -> None:
    parsed = parse_completion("Sure! <reasoning>r</reasoning> so <answer>7</answer>")
    assert parsed.problems == ("text before <reasoning>", "text between </reasoning> and <answer>")


def test_answer_before_reasoning() -> None:
    parsed = parse_completion("<answer>7</answer><reasoning>r</reasoning>")
    assert parsed.problems == ("answer before reasoning",)


def test_stray_closing_tag() -> None:
    parsed = parse_completion("</answer><reasoning>r</reasoning><answer>7</answer>")
    assert parsed.problems == ("</answer> without <answer>",)
    assert parsed.answer == "7"


def test_text_after_end_of_turn_is_ignored_but_reported() -> None:
    parsed = parse_completion(
        "<reasoning>r</reasoning><answer>7</answer><end_of_turn><start_of_turn>user"
    )
    assert parsed.answer == "7"
    assert parsed.problems == ("text after <end_of_turn>",)


def test_unclosed_reasoning_swallowing_the_answer() -> None:
    parsed = parse_completion("<reasoning>r<answer>7</answer>")
    assert parsed.answer == "7"
    assert not parsed.has_reasoning
    assert parsed.problems == ("nested tags: <answer> inside <reasoning>", "unclosed <reasoning>")


def test_tags_are_case_sensitive() -> None:
    parsed = parse_completion("<Reasoning>r</Reasoning><ANSWER>7</ANSWER>")
    assert not parsed.has_reasoning and not parsed.has_answer
