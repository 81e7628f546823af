"""The competition format: a Gemma chat turn whose model part is
``<reasoning>…</reasoning><answer>…</answer><end_of_turn>``.

The prompt ends with ``<start_of_turn>model\\n``; everything after it is the completion,
the only part training takes loss on. ``<bos>`` is the tokenizer's business, not ours.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from tunix_core.config import DEFAULT_SYSTEM_PROMPT
from tunix_core.data.record import ReasoningExample

START_OF_TURN = "<start_of_turn>"
END_OF_TURN = "<end_of_turn>"
USER_TURN = f"{START_OF_TURN}user\n"
MODEL_TURN = f"{START_OF_TURN}model\n"
REASONING_START = "<reasoning>"
REASONING_END = "</reasoning>"
ANSWER_START = "<answer>"
ANSWER_END = "</answer>"


@attrs.frozen
class RenderedExample:
    """A rendered example split where loss starts: ``text == prompt + completion``."""

    id: str
    prompt: str
    completion: str

    @property
    def text(self) -> str:
        return self.prompt + self.completion


def render_prompt(question: str, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> str:
    """The user turn and the opening of the model turn. An empty system prompt leaves
    only the question in the user turn."""
    user = f"{system_prompt}\n\n{question}" if system_prompt else question
    return f"{USER_TURN}{user}{END_OF_TURN}\n{MODEL_TURN}"


def render_completion(steps: Sequence[str], answer: str) -> str:
    """What the model should write: the steps one per line, then the answer."""
    return render_reasoning_completion("\n".join(steps), answer)


def render_reasoning_completion(reasoning: str, answer: str) -> str:
    """What the model should write: ``reasoning`` exactly as given, then the answer."""
    return (
        f"{REASONING_START}{reasoning}{REASONING_END}"
        f"{ANSWER_START}{answer}{ANSWER_END}{END_OF_TURN}"
    )


def render_example(
    example: ReasoningExample, system_prompt: str = DEFAULT_SYSTEM_PROMPT
) -> RenderedExample:
    return RenderedExample(
        id=example.id,
        prompt=render_prompt(example.question, system_prompt),
        completion=render_reasoning_completion(example.reasoning_text, example.answer),
    )
