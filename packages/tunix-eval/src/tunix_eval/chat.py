"""``tunix generate`` and ``tunix chat``: ask a model one question, or talk with it.

The model is a run's trained one (``RUN``: its ``model/`` export, loaded by the backend its
config names) or a preset's untrained one (``--model PRESET [--weights W] [--backend B]``).
Models are reached only through the backend registry, so nothing here imports JAX.

Prompts are the competition's Gemma chat turns (:func:`render_prompt`), with the run's
system prompt in the first user turn. A chat keeps earlier exchanges as earlier turns and,
when the model can tell (:class:`StreamingModel`), drops the oldest exchanges so the
prompt plus ``--max-new-tokens`` fits the model's context.
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

import attrs
import click

from tunix_core.cli import host_of
from tunix_core.config import RunConfig, load_run_config
from tunix_core.data.parse import parse_completion
from tunix_core.data.render import END_OF_TURN, render_prompt
from tunix_core.errors import TunixError
from tunix_core.layout import model_id
from tunix_core.plugins import PluginHost, backend_for, validate_spec
from tunix_core.protocols import LoadedModel, ModelSpec, StreamingModel
from tunix_core.rundir import RunDirectory

PROMPT = "you> "
STOPPED = "[stopped]"
# The flags `--model` mode sets each model.* field from, so a backend's error names the flag.
FLAG_OF_FIELD = {"model.preset": "--model", "model.weights": "--weights"}


@attrs.frozen
class OpenedModel:
    """A loaded model, where it came from, and the defaults its run (or a new run) uses."""

    model: LoadedModel
    source: str
    system_prompt: str
    max_new_tokens: int


def open_model(
    host: PluginHost,
    run: Path | None,
    preset: str | None,
    weights: str | None,
    backend_name: str | None,
) -> OpenedModel:
    """The model of run directory ``run``, or else the untrained ``preset``."""
    if run is not None:
        if preset or weights or backend_name:
            raise click.UsageError(
                "--model, --weights and --backend pick an untrained model; a run directory "
                "brings its own, so give one or the other"
            )
        return _open_run(host, run)
    if preset is None:
        raise click.UsageError("give a run directory (RUN) or an untrained model (--model PRESET)")
    return _open_preset(host, preset, weights or "default", backend_name or "jax")


def _open_run(host: PluginHost, path: Path) -> OpenedModel:
    run = RunDirectory.open(path)
    if not run.config_path.is_file():
        raise TunixError(
            f"{path} has no {run.config_path.name}; it is not a complete run directory"
        )
    config = load_run_config(run.config_path)
    backend = backend_for(host, config.model.backend, f"{run.config_path}: model.backend")
    if not run.model_config_path.is_file():
        raise TunixError(
            f"{path} has no trained model yet ({run.model_config_path} is missing); "
            f"finish its training with `tunix run --resume {path}`"
        )
    problems = backend.export_problems(run.model_dir)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise TunixError(f"{run.model_dir} is not a usable model export: {problems[0]}{more}")
    model = backend.load_export(run.model_dir, ModelSpec.from_config(config), progress=_to_stderr)
    return OpenedModel(
        model,
        f"{path} (trained {model_id(config.model.preset, config.model.weights)})",
        config.dataset.system_prompt,
        config.eval.max_new_tokens,
    )


def _open_preset(host: PluginHost, preset: str, weights: str, backend_name: str) -> OpenedModel:
    backend = backend_for(host, backend_name, "--backend")
    spec = ModelSpec(preset, weights)
    validate_spec(backend, spec, FLAG_OF_FIELD)
    defaults = RunConfig()
    return OpenedModel(
        backend.load(spec, progress=_to_stderr),
        f"{model_id(preset, weights)} (untrained)",
        defaults.dataset.system_prompt,
        defaults.eval.max_new_tokens,
    )


def _to_stderr(line: str) -> None:
    """Where a command's ``[load]`` line goes: beside the answers, not into them."""
    click.echo(line, err=True)


def context_problem(model: LoadedModel, prompt: str, max_new_tokens: int) -> str | None:
    """Why ``prompt`` and ``max_new_tokens`` new tokens do not fit ``model``'s context
    (``needs N tokens of prompt; ...``), or ``None`` when they fit or the model cannot tell
    (it is no :class:`StreamingModel`). The one check ``generate`` and ``chat`` make."""
    if not isinstance(model, StreamingModel):
        return None
    used = model.count_tokens(prompt)
    if used + max_new_tokens <= model.context_length:
        return None
    return (f"needs {used} tokens of prompt; with {max_new_tokens} new tokens it exceeds the "
            f"model's context of {model.context_length} tokens")  # fmt: skip


def render_conversation(
    exchanges: Sequence[tuple[str, str]], question: str, system_prompt: str
) -> str:
    """Earlier (question, answer) exchanges and the new question as Gemma chat turns,
    ending where the model's answer starts; the system prompt opens the first user turn."""
    turns = [
        render_prompt(asked, system_prompt if i == 0 else "") + f"{answered}{END_OF_TURN}\n"
        for i, (asked, answered) in enumerate(exchanges)
    ]
    return "".join(turns) + render_prompt(question, "" if exchanges else system_prompt)


@attrs.define
class ChatSession:
    """A conversation with one model. ``write`` shows the model's text as it comes."""

    model: LoadedModel
    system_prompt: str
    max_new_tokens: int
    write: Callable[[str], None]
    exchanges: list[tuple[str, str]] = attrs.field(factory=list)

    def reset(self) -> None:
        self.exchanges.clear()

    def prompt_for(self, question: str) -> str | None:
        """The conversation rendered with ``question`` last, after dropping the oldest
        exchanges it needs to fit the model's context; None (and a note) when the question
        alone does not fit."""
        dropped = 0
        while True:
            prompt = render_conversation(self.exchanges[dropped:], question, self.system_prompt)
            problem = context_problem(self.model, prompt, self.max_new_tokens)
            if problem is None:
                break
            if dropped == len(self.exchanges):
                self.write(f"(that message {problem})\n")
                return None
            dropped += 1
        if dropped:
            del self.exchanges[:dropped]
            self.write(f"(dropped the {dropped} oldest exchange(s) to fit the model's context)\n")
        return prompt

    def ask(self, question: str) -> None:
        """Show the model's answer to ``question`` as it is decoded and remember the
        exchange. Ctrl-C stops the answer where it is; what was shown is kept."""
        prompt = self.prompt_for(question)
        if prompt is None:
            return
        shown: list[str] = []
        try:
            with ctrl_c_requests_stop() as stop_requested:
                if isinstance(self.model, StreamingModel):
                    stream = self.model.stream(prompt, max_new_tokens=self.max_new_tokens)
                    for piece in stream:
                        shown.append(piece)
                        self.write(piece)
                        if stop_requested():
                            break
                    close = getattr(stream, "close", None)
                    if close is not None:
                        close()  # stops decoding now, not when the iterator is collected
                else:
                    shown.append(
                        self.model.generate([prompt], max_new_tokens=self.max_new_tokens)[0]
                    )
                    self.write(shown[-1])
                if stop_requested():
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.write(f"\n{STOPPED}")
        self.write("\n")
        self.exchanges.append((question, "".join(shown)))


@contextlib.contextmanager
def ctrl_c_requests_stop() -> Iterator[Callable[[], bool]]:
    """While the model answers, Ctrl-C only asks the answer to stop after its current
    token. A KeyboardInterrupt raised in the middle of JAX's dispatch can leave JAX
    unusable for the rest of the session. Off the main thread, where no handler can be
    installed, Ctrl-C raises as usual."""
    requested = False

    def request_stop(signum: int, frame: FrameType | None) -> None:
        nonlocal requested
        requested = True

    try:
        previous = signal.signal(signal.SIGINT, request_stop)
    except ValueError:  # not the main thread
        yield lambda: False
        return
    try:
        yield lambda: requested
    finally:
        signal.signal(signal.SIGINT, previous)


def run_chat(session: ChatSession, read_line: Callable[[str], str]) -> None:
    """Read lines until ``/quit``, end of input or Ctrl-C at the prompt; answer each."""
    while True:
        try:
            line = read_line(PROMPT).strip()
        except (EOFError, KeyboardInterrupt):
            session.write("\n")
            return
        if line == "/quit":
            return
        if line == "/reset":
            session.reset()
            session.write("(history cleared)\n")
        elif line.startswith("/"):
            session.write(f"unknown command {line}; /reset clears the history, /quit exits\n")
        elif line:
            session.ask(line)


def _write(text: str) -> None:
    click.echo(text, nl=False)  # click.echo flushes, so each piece shows at once


def model_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options ``generate`` and ``chat`` share."""
    options = [
        click.option("--model", "preset", help="An untrained model preset instead of a RUN."),
        click.option(
            "--weights",
            help="With --model: default | random | gguf:PATH | "
            "safetensors:DIR | orbax:DIR. [default: default]",
        ),
        click.option(
            "--backend", "backend_name", help="With --model: the model backend. [default: jax]"
        ),
        click.option(
            "--max-new-tokens",
            type=click.IntRange(min=1),
            help="Most tokens per answer. [default: the run's eval.max_new_tokens, or 160]",
        ),
        click.option(
            "--system-prompt",
            help="Opens the first user turn; '' for none. "
            "[default: the run's dataset.system_prompt]",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


RUN_PATH = click.Path(exists=True, file_okay=False, path_type=Path)


@click.command("generate")
@click.argument("run", nargs=-1, type=RUN_PATH, metavar="[RUN]")
@click.argument("question")
@model_options
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {completion, reasoning, answer, format_ok} as JSON.",
)
@click.pass_context
def generate(
    ctx: click.Context,
    run: tuple[Path, ...],
    question: str,
    preset: str | None,
    weights: str | None,
    backend_name: str | None,
    max_new_tokens: int | None,
    system_prompt: str | None,
    as_json: bool,
) -> None:
    """Answer QUESTION with RUN's trained model (or --model's untrained one) and show the
    completion with its reasoning and answer."""
    if len(run) > 1:
        raise click.UsageError("give one RUN directory, then the QUESTION (quote it)")
    opened = open_model(host_of(ctx), run[0] if run else None, preset, weights, backend_name)
    system = opened.system_prompt if system_prompt is None else system_prompt
    prompt = render_prompt(question, system)
    new_tokens = max_new_tokens or opened.max_new_tokens
    problem = context_problem(opened.model, prompt, new_tokens)
    if problem is not None:
        raise TunixError(f"the question {problem}; shorten it (or the system prompt), or "
                         "lower --max-new-tokens")  # fmt: skip
    completion = opened.model.generate([prompt], max_new_tokens=new_tokens)[0]
    parsed = parse_completion(completion)
    if as_json:
        record = {
            "completion": completion,
            "reasoning": parsed.reasoning,
            "answer": parsed.answer,
            "format_ok": parsed.format_exact,
        }
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    click.echo(f"completion:\n{completion}\n")
    click.echo(f"reasoning: {'(none)' if parsed.reasoning is None else parsed.reasoning}")
    click.echo(f"answer: {'(none)' if parsed.answer is None else parsed.answer}")
    click.echo("format: " + ("exact" if parsed.format_exact else "; ".join(parsed.problems)))


@click.command("chat")
@click.argument("run", required=False, type=RUN_PATH)
@model_options
@click.pass_context
def chat(
    ctx: click.Context,
    run: Path | None,
    preset: str | None,
    weights: str | None,
    backend_name: str | None,
    max_new_tokens: int | None,
    system_prompt: str | None,
) -> None:
    """Talk with RUN's trained model (or --model's untrained one) in the terminal.

    \b
    Answers stream as they are decoded; Ctrl-C stops an answer.
    /reset clears the history; /quit, Ctrl-D or Ctrl-C at the prompt exits.
    """
    opened = open_model(host_of(ctx), run, preset, weights, backend_name)
    session = ChatSession(
        opened.model,
        opened.system_prompt if system_prompt is None else system_prompt,
        max_new_tokens or opened.max_new_tokens,
        _write,
    )
    streams = "streams its answers" if isinstance(opened.model, StreamingModel) else "answers"
    click.echo(
        f"tunix chat with {opened.source}; it {streams}. /reset clears the history, /quit exits."
    )
    # Line editing and history for input(); readline is not on every platform.
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401
    run_chat(session, input)
