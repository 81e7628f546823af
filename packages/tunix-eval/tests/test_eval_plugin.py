"""tunix-eval's plugin registers lazy evaluators, answer checks and commands that import
no JAX."""

import os
import subprocess
import sys
from pathlib import Path

from tunix_core.evaluation import answer_checks_of
from tunix_core.protocols import AnswerOptions, AnswerVerdict, Evaluator

SOURCES = [str(Path(__file__).parents[2] / p / "src") for p in ("tunix-core", "tunix-eval")]


def test_evaluators_are_registered_lazily_and_build_without_arguments(host):
    assert set(host.evaluators.names()) == {"format", "accuracy", "trace", "judge", "hacking",
                                          "code-exec", "judging-mix"}
    for entry in host.evaluators.entries():
        assert entry.distribution == "tunix-eval"
        assert entry.target.startswith("tunix_eval.") and entry.description
        evaluator = entry.load()()  # the judge loads no model until it evaluates
        assert isinstance(evaluator, Evaluator)
        assert evaluator.name == entry.name


def test_answer_checks_are_registered_lazily(host):
    checks = answer_checks_of(host)
    assert checks.names() == ["auto", "casefold", "exact", "list", "number", "yes_no"]
    for entry in checks.entries():
        assert entry.distribution == "tunix-eval"
        assert entry.target.startswith("tunix_eval.normalize:check_") and entry.description
        expected = {"yes_no": "yes", "number": "1", "list": "1, 2"}.get(entry.name, "1")
        assert isinstance(entry.load()(expected, expected, AnswerOptions()), AnswerVerdict)


def test_commands_are_added_lazily(host):
    from click.testing import CliRunner

    from tunix_core.command_group import TunixGroup

    root = TunixGroup("tunix")
    host.register_commands(root)
    assert set(root.lazy_commands) == {"eval", "compare", "runs", "report", "distill", "pairs",
                                       "generate", "chat"}  # fmt: skip
    assert root.huge_page_commands == {"eval"}
    assert root.commands == {}  # nothing imported until a command is used
    assert "runs      Runs under a folder" in CliRunner().invoke(root, ["--help"]).output
    assert set(root.get_command(None, "runs").commands) == {"list", "show"}


def test_importing_the_plugin_and_its_commands_does_not_import_jax():
    code = (
        "import sys, tunix_eval.plugin, tunix_eval.commands, tunix_eval.judge\n"
        "import tunix_eval.distill_command, tunix_eval.pairs_command\n"
        "heavy = sorted(m for m in ('jax', 'flax', 'torch', 'tunix_jax') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(SOURCES)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
