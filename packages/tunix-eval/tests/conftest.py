"""Fixtures of the tunix-eval tests, and the plugins they install into a real PluginHost:
a small arithmetic dataset and a model backend whose "model" is a deterministic rule-based
generator.

The generator stands in for a model only; what the tests check is the code around it
(commands, files, scoring). Untrained it answers loosely formatted and gets sums of 10 or
more wrong; trained it answers in the exact format and gets everything right but 2 + 2.
"""

from __future__ import annotations

import re
import types
from collections.abc import Sequence
from typing import Any, ClassVar

import click
import pytest
from click.testing import CliRunner

from tunix_core.command_group import TunixGroup
from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, get_host, plugin_module
from tunix_core.protocols import RunContext

PAIRS = [(1, 2), (3, 4), (5, 6), (7, 8), (2, 2), (9, 9)]
CATEGORIES = ["small", "small", "large", "large", "small", "large"]


def arithmetic_examples(split: str) -> list[ReasoningExample]:
    prefix = "u" if split == "eval" else "t"
    return [
        ReasoningExample(
            id=f"{prefix}{index}",
            question=f"What is {a} + {b}?",
            steps=(f"{a} plus {b} is {a + b}.",),
            answer=str(a + b),
            meta=ExampleMeta(
                category=CATEGORIES[index],
                section="core",
                difficulty="easy" if a + b < 10 else "medium",
            ),
        )
        for index, (a, b) in enumerate(PAIRS)
    ]


class ArithmeticDataset:
    description = "sums of two digits"

    def splits(self) -> Sequence[str]:
        return ["train", "eval"]

    def load(self, split, *, argument, seed, options, transforms):
        return arithmetic_examples(split)


_QUESTION = re.compile(r"What is (\d+) \+ (\d+)\?")
_JUDGED = re.compile(r"Reference answer:\n(.*?)\n\nResponse:\n.*?<answer>(.*?)</answer>", re.S)


class ArithmeticModel:
    """The stand-in model (see the module docstring). Judge prompts get a literal verdict."""

    def __init__(self, trained: bool) -> None:
        self.trained = trained
        self.prompts: list[str] = []

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        self.prompts.extend(prompts)
        return [self._reply(p) for p in prompts]

    def _reply(self, prompt: str) -> str:
        if "You are grading" in prompt:
            judged = _JUDGED.search(prompt)
            same = judged is not None and judged.group(1).strip() == judged.group(2).strip()
            return "SCORE: 5" if same else "SCORE: 1"
        a, b = map(int, _QUESTION.search(prompt).groups())
        if not self.trained:
            guess = a + b if a + b < 10 else a + b + 1
            return f"Let me see. <reasoning>{a} and {b}</reasoning><answer>{guess}</answer>"
        total = a + b if (a, b) != (2, 2) else 5
        return f"<reasoning>{a} plus {b}\nmakes {total}.</reasoning><answer>{total}</answer>"


class ArithmeticBackend:
    """A model backend of stand-in models; records how it was asked for them."""

    name = "jax"
    calls: ClassVar[list[dict[str, Any]]] = []

    def validate(self, spec) -> None:
        ArithmeticBackend.calls.append({"validate": spec})

    def load(self, spec, *, progress):
        ArithmeticBackend.calls.append({"spec": spec, "trained": False})
        return ArithmeticModel(trained=False)

    def load_export(self, directory, spec, *, progress):
        ArithmeticBackend.calls.append({"spec": spec, "trained": True, "directory": directory})
        return ArithmeticModel(trained=True)


@hookimpl
def _register_datasets(registry):
    registry.register("arith", f"{__name__}:ArithmeticDataset", description="sums")


@hookimpl
def _register_backends(registry):
    registry.register("jax", f"{__name__}:ArithmeticBackend", description="rule-based")


def make_host(backend_plugin: Any = None) -> PluginHost:
    """A host with tunix-eval's plugin, the arithmetic dataset and a model backend: the
    rule-based one, or the ``tunix_register_backends`` of ``backend_plugin``."""
    import tunix_eval.plugin

    host = PluginHost()
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")
    datasets = plugin_module("test-plugin", tunix_register_datasets=_register_datasets)
    host.add_plugin(datasets, "arith", "tunix-arith-test")
    backends = backend_plugin or plugin_module("test-plugin", tunix_register_backends=_register_backends)
    host.add_plugin(plugin_module("test-plugin", tunix_register_backends=backends.tunix_register_backends),
                    "backend", "tunix-backend-test")  # fmt: skip
    host.fill_registries()
    ArithmeticBackend.calls.clear()
    return host


def make_invoker(host: PluginHost):
    """Run ``tunix ARGS`` with only the commands tunix-eval registers."""
    import tunix_eval.plugin

    root = TunixGroup("tunix")
    tunix_eval.plugin.tunix_register_commands(cli=root)

    def run(*args: object) -> click.testing.Result:
        return CliRunner().invoke(root, [str(a) for a in args], obj=host)

    return run


@pytest.fixture
def host() -> PluginHost:
    return make_host()


@pytest.fixture
def arith() -> types.SimpleNamespace:
    """The test plugin's pieces, for tests that build evaluations by hand."""
    return types.SimpleNamespace(backend=ArithmeticBackend, model=ArithmeticModel,
                                 examples=arithmetic_examples)  # fmt: skip


@pytest.fixture
def invoke(host):
    return make_invoker(host)


@pytest.fixture
def jax_invoke():
    """Like ``invoke``, with the real ``jax`` backend of tunix-jax instead of the stand-in."""
    import tunix_jax.plugin

    return make_invoker(make_host(tunix_jax.plugin))


# A completion that would run script in the report if it were not escaped (item u4, which
# the final evaluation gets wrong after the baseline got it right).
SCRIPT_COMPLETION = ('<reasoning>2 plus 2 <script>console.error("unescaped completion")'
                     "</script></reasoning><answer>5</answer>")  # fmt: skip
BEFORE_RIGHT, AFTER_RIGHT = {"u0", "u4"}, {"u0", "u1", "u2", "u3"}


def build_report_run(root, *, baseline: bool = True, trained: bool = True, model_dir=None,
                     fingerprint: str | None = None, extra_metrics: Sequence[str] = ()):  # fmt: skip
    """A run directory written with the project's own writers, the way `tunix run` leaves
    it: the dataset stage done, the baseline measured (or skipped), and when ``trained``,
    metrics.jsonl, ``model/`` (a copy of ``model_dir``, else a bare model_config.json) and
    the final evaluation. Completions are hand-written so that u1-u3 flip to right and u4
    (with SCRIPT_COMPLETION) flips to wrong; ``extra_metrics`` adds curves to metrics.jsonl."""
    import shutil

    import yaml

    from tunix_core.config import structure_config, unstructure_config
    from tunix_core.data.record import write_jsonl
    from tunix_core.evaluation import score_predictions
    from tunix_core.jsonio import append_jsonl
    from tunix_core.protocols import Prediction
    from tunix_core.rundir import RunDirectory

    examples = arithmetic_examples("eval")
    run = RunDirectory.create(root, "report-run", model_id="tiny-gemma3@random", dataset="arith",
                              trainer="jax", config_path=None,
                              command=["tunix", "run", "--dataset", "arith"])  # fmt: skip
    config = structure_config({"dataset": {"name": "arith"},
                               "model": {"preset": "tiny-gemma3", "weights": "random"}})  # fmt: skip
    run.config_path.write_text(yaml.safe_dump(unstructure_config(config)))

    def stage(name: str, seconds: float, detail: dict[str, Any], status: str = "done") -> None:
        run.start_stage(name)
        run.finish_stage(name, seconds, status=status, detail=detail)

    def score(folder, label: str, right: set[str]) -> dict[str, Any]:
        predictions = []
        for example in examples:
            if example.id == "u4" and example.id not in right:
                completion = SCRIPT_COMPLETION
            else:
                answer = example.answer if example.id in right else "0"
                completion = f"<reasoning>{example.steps[0]}</reasoning><answer>{answer}</answer>"
            meta = {"category": example.meta.category, "section": example.meta.section,
                    "difficulty": example.meta.difficulty}  # fmt: skip
            predictions.append(Prediction(example.id, example.question, completion,
                                          example.answer, meta))  # fmt: skip
        return score_predictions(predictions, [], label=label, out_dir=folder, context=RunContext(get_host()))

    write_jsonl(examples, run.eval_data_path)
    stage("dataset", 0.4, {"eval_items": len(examples)})
    if baseline:
        summary = score(run.baseline_dir, "baseline", BEFORE_RIGHT)
        stage("baseline", 12.5, {"primary_score": summary["primary_score"]})
    else:
        stage("baseline", 0.0, {"skipped": True}, status="skipped")
    if not trained:
        return run
    append_jsonl(run.metrics_path, [
        {"step": step, "loss": 2.0 / step, "learning_rate": 1e-4 * step, "elapsed_seconds": 1.5 * step,
         **{name: 0.1 * step for name in extra_metrics}}
        for step in range(1, 6)
    ])  # fmt: skip
    if model_dir is not None:
        shutil.copytree(model_dir, run.model_dir)
    else:
        run.model_dir.mkdir()
        run.model_config_path.write_text('{"preset": "tiny-gemma3"}\n')
    run.manifest["model_fingerprint"] = fingerprint
    stage("train", 95.0, {"steps": 5, "stopped_early": False, "reason": ""})
    summary = score(run.path, "final", AFTER_RIGHT)
    stage("evaluate", 10.0, {"primary_score": summary["primary_score"]})
    return run


@pytest.fixture
def report_run():
    """:func:`build_report_run`."""
    return build_report_run


class SamplingOnly:
    """A stand-in model for `tunix pairs`' tests: pairs only sample, so greedy decoding is
    an error; scores are never read."""

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:
        raise AssertionError("pairs must sample, not decode greedily")

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        return [0.0 for _ in prompts]
