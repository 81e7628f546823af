"""``tunix generate`` and ``tunix chat`` against scripted backends (no JAX): where the model
comes from, what prompt it gets, what is printed, and how a chat keeps its history."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from click.testing import CliRunner

from tunix_core import builtin
from tunix_core.command_group import TunixGroup
from tunix_core.config import DEFAULT_SYSTEM_PROMPT, RunConfig, unstructure_config
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import ModelExport, ModelSpec, StreamingModel
from tunix_core.rundir import RunDirectory
from tunix_eval import plugin
from tunix_eval.chat import STOPPED, ChatSession, render_conversation, run_chat

ANSWER = "<reasoning>2 plus 2 is 4</reasoning><answer>4</answer>"


class WholeModel:
    """Answers every prompt with ANSWER, all at once; remembers the prompts."""

    def __init__(self, spec: ModelSpec, origin: str) -> None:
        self.spec = spec
        self.origin = origin
        self.prompts: list[str] = []

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        self.prompts += prompts
        return [ANSWER[:max_new_tokens] for _ in prompts]

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        return [0.0 for _ in prompts]


class StreamingFake(WholeModel):
    """Streams ANSWER in 5-character pieces. A token is a character; ``interrupt_after``
    pieces in, it raises KeyboardInterrupt as Ctrl-C would."""

    context_length = 400
    interrupt_after: int | None = None

    def count_tokens(self, text: str) -> int:
        return len(text)

    def stream(self, prompt: str, *, max_new_tokens: int) -> Iterator[str]:
        self.prompts.append(prompt)
        text = ANSWER[:max_new_tokens]
        for index, start in enumerate(range(0, len(text), 5)):
            if index == self.interrupt_after:
                raise KeyboardInterrupt
            yield text[start : start + 5]


class ScriptedBackend:
    name = "scripted"
    loaded: ClassVar[list[WholeModel]] = []

    def validate(self, spec: ModelSpec) -> None:
        from tunix_core.errors import ConfigError

        if spec.preset != "tiny":
            raise ConfigError(f"model.preset: unknown preset {spec.preset!r}")

    def load(self, spec: ModelSpec, *, progress: Any) -> WholeModel:
        return self._keep(StreamingFake(spec, "base"))

    def load_export(self, directory: Path, spec: ModelSpec, *, progress: Any) -> WholeModel:
        return self._keep(StreamingFake(spec, f"export {directory}"))

    def _keep(self, model: WholeModel) -> WholeModel:
        ScriptedBackend.loaded.append(model)
        return model

    def export(self, model: Any, directory: Path, **extras: Any) -> ModelExport:
        raise NotImplementedError

    def verify(self, directory: Path, *, progress: Any) -> dict[str, Any]:
        return {"ok": True}

    def export_problems(self, directory: Path) -> list[str]:
        broken = directory / "broken"
        return [f"{broken}: unreadable", "and another"] if broken.exists() else []


@hookimpl
def _register_backends(registry: Any) -> None:
    registry.register("scripted", f"{__name__}:ScriptedBackend")


@pytest.fixture
def host() -> PluginHost:
    ScriptedBackend.loaded.clear()
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(plugin_module("chat-test", tunix_register_backends=_register_backends),
                    "chat-test", "tunix-chat-test")  # fmt: skip
    host.fill_registries()
    return host


def invoke(host: PluginHost, *args: str, input: str | None = None):
    """``tunix ARGS`` with the commands tunix-eval registers."""
    root = TunixGroup("tunix")
    plugin.tunix_register_commands(cli=root)
    return CliRunner().invoke(root, list(args), obj=host, input=input)


def make_run(root: Path, *, trained: bool = True, backend: str = "scripted") -> Path:
    """A run directory whose config says ``backend`` and a system prompt of its own."""
    run = RunDirectory.create(root, "r1", model_id="tiny@random", dataset="d", trainer="t",
                              config_path=None, command=["tunix", "run"])  # fmt: skip
    data = unstructure_config(RunConfig())
    data["model"].update(preset="tiny", weights="random", backend=backend)
    data["dataset"]["system_prompt"] = "Answer briefly."
    data["eval"]["max_new_tokens"] = 12
    run.config_path.write_text(yaml.safe_dump(data))
    if trained:
        run.model_dir.mkdir()
        run.model_config_path.write_text("{}")
    return run.path


def test_generate_with_a_preset_prints_the_completion_and_its_parts(host):
    result = invoke(host, "generate", "--model", "tiny", "--backend", "scripted", "What is 2+2?")
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"completion:\n{ANSWER}\n\nreasoning: 2 plus 2 is 4\nanswer: 4\nformat: exact\n"
    )
    (model,) = ScriptedBackend.loaded
    assert model.origin == "base" and model.spec == ModelSpec("tiny", "default")
    # The chat turn of the default system prompt; the whole completion, not a stream.
    assert model.prompts == [
        f"<start_of_turn>user\n{DEFAULT_SYSTEM_PROMPT}\n\nWhat is 2+2?<end_of_turn>\n"
        "<start_of_turn>model\n"
    ]


@pytest.mark.parametrize("extra", [0, 1, 5000])
def test_generate_refuses_a_question_that_does_not_fit_the_context_as_chat_does(host, extra):
    """StreamingFake's context is 400 tokens of one character; the default prompt plus 100
    new tokens fills it exactly, one more character is refused, before anything is asked."""
    question = "x" * (400 - 100 - len(render_conversation([], "", DEFAULT_SYSTEM_PROMPT)) + extra)
    result = invoke(host, "generate", "--model", "tiny", "--backend", "scripted",
                    "--max-new-tokens", "100", question)  # fmt: skip
    (model,) = ScriptedBackend.loaded
    if extra == 0:
        assert result.exit_code == 0, result.output
        assert len(model.prompts) == 1
        return
    assert result.exit_code == 1 and model.prompts == []
    used = 300 + extra
    assert result.output == (
        f"Error: the question needs {used} tokens of prompt; with 100 new tokens it exceeds the "
        "model's context of 400 tokens; shorten it (or the system prompt), or lower "
        "--max-new-tokens\n"
    )
    # The same check, in the same words, in a chat.
    session, written = session_of(StreamingFake(ModelSpec("tiny"), "base"), max_new_tokens=100)
    session.system_prompt = DEFAULT_SYSTEM_PROMPT
    session.ask(question)
    assert written == [f"(that message needs {used} tokens of prompt; with 100 new tokens it "
                       "exceeds the model's context of 400 tokens)\n"]  # fmt: skip


def test_generate_json_reports_a_format_problem(host):
    result = invoke(host, "generate", "--model", "tiny", "--weights", "random", "--backend",
                    "scripted", "--max-new-tokens", "40", "--json", "q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "completion": ANSWER[:40], "reasoning": "2 plus 2 is 4", "answer": None,
        "format_ok": False,
    }  # fmt: skip
    assert ScriptedBackend.loaded[0].spec.weights == "random"


def test_generate_with_a_run_uses_its_trained_model_and_its_system_prompt(host, tmp_path):
    run = make_run(tmp_path)
    result = invoke(host, "generate", str(run), "Why?", "--json")
    assert result.exit_code == 0, result.output
    (model,) = ScriptedBackend.loaded
    assert model.origin == f"export {run / 'model'}"
    assert model.spec == ModelSpec("tiny", "random")
    assert model.prompts == ["<start_of_turn>user\nAnswer briefly.\n\nWhy?<end_of_turn>\n"
                             "<start_of_turn>model\n"]  # fmt: skip
    # The run's eval.max_new_tokens (12) is the default length.
    assert json.loads(result.output)["completion"] == ANSWER[:12]


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda root: make_run(root, trained=False), [],
         r"^Error: .*r1 has no trained model yet \(.*model_config\.json is missing\); finish "
         r"its training with `tunix run --resume .*r1`$"),
        (lambda root: make_run(root, backend="torch"), [],
         r"^Error: .*config\.yaml: model\.backend: Unknown model backend 'torch'"),
        (lambda root: root, [], r"^Error: .* is not a run directory: run_manifest\.json is missing$"),
        (None, ["--model", "huge", "--backend", "scripted"], r"^Error: --model: unknown preset 'huge'$"),
        (None, ["--model", "tiny", "--backend", "nope"], r"^Error: --backend: Unknown model backend 'nope'"),
    ],
)  # fmt: skip
def test_generate_errors_are_one_line(host, tmp_path, make, args, message):
    where = [str(make(tmp_path))] if make else []
    result = invoke(host, "generate", *where, *args, "q")
    assert result.exit_code != 0
    assert len(result.output.splitlines()) == 1, result.output
    assert re.match(message, result.output.strip()), result.output


def test_a_broken_export_is_named(host, tmp_path):
    run = make_run(tmp_path)
    (run / "model" / "broken").write_text("")
    result = invoke(host, "generate", str(run), "q")
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {run / 'model'} is not a usable model export: "
        f"{run / 'model' / 'broken'}: unreadable (and 1 more problems)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["q"], "give a run directory (RUN) or an untrained model (--model PRESET)"),
        (["--model", "tiny", "RUNDIR", "q"], "a run directory brings its own"),
        (["RUNDIR", "RUNDIR", "q"], "give one RUN directory, then the QUESTION"),
    ],
)
def test_generate_usage_errors(host, tmp_path, args, message):
    args = [str(tmp_path) if a == "RUNDIR" else a for a in args]
    result = invoke(host, "generate", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert ScriptedBackend.loaded == []


def test_render_conversation_puts_earlier_exchanges_in_turns():
    prompt = render_conversation([("hi", "hello"), ("2+2?", "4")], "and 3+3?", "Be brief.")
    assert prompt == (
        "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\nhello<end_of_turn>\n"
        "<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n"
        "<start_of_turn>user\nand 3+3?<end_of_turn>\n<start_of_turn>model\n"
    )
    assert render_conversation([], "hi", "") == "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"


def session_of(model: WholeModel, max_new_tokens: int = 100) -> tuple[ChatSession, list[str]]:
    written: list[str] = []
    return ChatSession(model, "Sys.", max_new_tokens, written.append), written


def lines(*typed: str | type[BaseException]):
    """A read_line that types ``typed`` in turn (raising the exception classes) and records
    its prompts; EOF after the last."""
    prompts: list[str] = []
    queue = list(typed)

    def read_line(prompt: str) -> str:
        prompts.append(prompt)
        if not queue:
            raise EOFError
        item = queue.pop(0)
        if isinstance(item, str):
            return item
        raise item

    return read_line, prompts


def test_a_chat_streams_answers_and_keeps_the_conversation():
    model = StreamingFake(ModelSpec("tiny"), "base")
    assert isinstance(model, StreamingModel)
    session, written = session_of(model)
    read_line, prompts = lines("hi", "", "2+2?", "/quit", "never read")
    run_chat(session, read_line)
    assert prompts == ["you> "] * 4
    # Each answer is written piece by piece as it streams, then a newline.
    pieces = [ANSWER[i : i + 5] for i in range(0, len(ANSWER), 5)]
    assert written == [*pieces, "\n", *pieces, "\n"]
    assert model.prompts == [
        render_conversation([], "hi", "Sys."),
        render_conversation([("hi", ANSWER)], "2+2?", "Sys."),
    ]
    assert session.exchanges == [("hi", ANSWER), ("2+2?", ANSWER)]


def test_reset_clears_the_history_and_unknown_commands_are_named():
    model = StreamingFake(ModelSpec("tiny"), "base")
    session, written = session_of(model, max_new_tokens=5)
    run_chat(session, lines("hi", "/reset", "/help", "again")[0])
    assert "(history cleared)\n" in written
    assert "unknown command /help; /reset clears the history, /quit exits\n" in written
    assert model.prompts[-1] == render_conversation([], "again", "Sys.")


@pytest.mark.parametrize("at_prompt", [KeyboardInterrupt, EOFError])
def test_ctrl_c_or_eof_at_the_prompt_ends_the_chat(at_prompt):
    model = StreamingFake(ModelSpec("tiny"), "base")
    session, written = session_of(model)
    read_line, prompts = lines(at_prompt, "never read")
    run_chat(session, read_line)
    assert prompts == ["you> "] and written == ["\n"] and model.prompts == []


def test_ctrl_c_during_an_answer_stops_it_and_returns_to_the_prompt():
    model = StreamingFake(ModelSpec("tiny"), "base")
    model.interrupt_after = 2
    session, written = session_of(model)
    read_line, prompts = lines("hi", "more")
    run_chat(session, read_line)
    partial = ANSWER[:10]
    assert written[:4] == [ANSWER[:5], ANSWER[5:10], f"\n{STOPPED}", "\n"]
    assert prompts == ["you> "] * 3  # back at the prompt after the stop, then EOF
    # What was shown stays in the history.
    assert session.exchanges == [("hi", partial), ("more", partial)]


def test_the_oldest_exchanges_are_dropped_to_fit_the_context():
    model = StreamingFake(ModelSpec("tiny"), "base")
    session, written = session_of(model, max_new_tokens=100)
    session.exchanges = [("first " * 20, "a" * 60), ("second", "b" * 60)]
    budget = model.context_length - 100
    question = "third"
    assert model.count_tokens(render_conversation(session.exchanges, question, "Sys.")) > budget
    session.ask(question)
    assert model.count_tokens(model.prompts[-1]) <= budget
    assert model.prompts[-1] == render_conversation([("second", "b" * 60)], question, "Sys.")
    assert written[0] == "(dropped the 1 oldest exchange(s) to fit the model's context)\n"
    assert [q for q, _ in session.exchanges] == ["second", "third"]


def test_a_message_too_long_for_the_context_is_refused():
    model = StreamingFake(ModelSpec("tiny"), "base")
    session, written = session_of(model, max_new_tokens=100)
    session.exchanges = [("earlier", "answer")]
    session.ask("x" * 400)
    assert model.prompts == []
    assert written == [
        f"(that message needs {len(render_conversation([], 'x' * 400, 'Sys.'))} tokens of "
        "prompt; with 100 new tokens it exceeds the model's context of 400 tokens)\n"
    ]
    assert session.exchanges == [("earlier", "answer")]


def test_a_model_that_does_not_stream_answers_whole():
    model = WholeModel(ModelSpec("tiny"), "base")
    assert not isinstance(model, StreamingModel)
    session, written = session_of(model)
    run_chat(session, lines("hi", "again")[0])
    assert written == [ANSWER, "\n", ANSWER, "\n", "\n"]  # the last one: EOF
    assert model.prompts[-1] == render_conversation([("hi", ANSWER)], "again", "Sys.")


def test_the_chat_command_talks_with_a_run(host, tmp_path):
    run = make_run(tmp_path)
    result = invoke(host, "chat", str(run), input="hi\n/reset\nbye\n/quit\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(
        f"tunix chat with {run} (trained tiny@random); it streams its answers."
    )
    # The run's eval.max_new_tokens (12) bounds each answer.
    assert result.output.count(f"you> {ANSWER[:12]}\n") == 2
    assert "(history cleared)" in result.output
    (model,) = ScriptedBackend.loaded
    assert model.prompts == [render_conversation([], q, "Answer briefly.") for q in ("hi", "bye")]

