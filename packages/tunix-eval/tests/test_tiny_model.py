"""End to end with a real model: a tiny, randomly initialised Gemma 3 loaded by tunix-jax's
``jax`` backend (``ModelSpec("tiny-gemma3", "random")``, its KV-cache sampler) generates
through the core loop with the standard evaluators; the files validate, and a rerun after an
interruption generates only the missing items, to the same text (greedy decoding)."""

from __future__ import annotations

import json

import pytest

from tunix_core.config import DEFAULT_SYSTEM_PROMPT
from tunix_core.evaluation import evaluate_examples
from tunix_core.evidence import validate_file
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS
from tunix_core.plugins import get_host
from tunix_core.protocols import RunContext
from tunix_eval.accuracy import AccuracyEvaluator
from tunix_eval.format import FormatEvaluator
from tunix_eval.trace import TraceEvaluator


@pytest.fixture(scope="module")
def tiny_generator():
    from tunix_core.protocols import ModelSpec
    from tunix_jax.backend import JaxBackend

    return JaxBackend().load(ModelSpec("tiny-gemma3", "random"), progress=print)


class CountingGenerator:
    def __init__(self, inner) -> None:
        self.inner = inner
        self.prompts: list[str] = []

    def generate(self, prompts, *, max_new_tokens):
        self.prompts.extend(prompts)
        return self.inner.generate(prompts, max_new_tokens=max_new_tokens)


def test_tiny_gemma3_end_to_end_with_resume(tiny_generator, arith, tmp_path):
    examples = arith.examples("eval")[:4]

    def evaluate(generator):
        evaluators = [FormatEvaluator(), AccuracyEvaluator(), TraceEvaluator()]
        return evaluate_examples(generator, examples, evaluators,
                                 system_prompt=DEFAULT_SYSTEM_PROMPT, max_new_tokens=6,
                                 batch_size=2, out_dir=tmp_path, label="tiny", context=RunContext(get_host()))  # fmt: skip

    summary = evaluate(tiny_generator)
    assert validate_file(tmp_path / PREDICTIONS) == []
    assert validate_file(tmp_path / EVAL_SUMMARY) == []
    assert summary["counts"]["items"] == 4 and summary["generation"]["generated"] == 4
    assert set(summary["evaluators"]) == {"format", "accuracy", "trace"}
    records = [json.loads(line) for line in (tmp_path / PREDICTIONS).read_text().splitlines()]
    assert [r["id"] for r in records] == [e.id for e in examples]
    assert all(r["prompt"].endswith("<start_of_turn>model\n") for r in records)
    assert all(set(r["scores"]) == {"format", "accuracy", "trace"} for r in records)

    # Interrupted after the first batch, in the middle of appending the second one:
    lines = (tmp_path / PREDICTIONS).read_text().splitlines(keepends=True)
    (tmp_path / PREDICTIONS).write_text("".join(lines[:2]) + lines[2][:25])
    (tmp_path / EVAL_SUMMARY).unlink()
    counting = CountingGenerator(tiny_generator)
    resumed_summary = evaluate(counting)
    assert counting.prompts == [records[2]["prompt"], records[3]["prompt"]]
    resumed = [json.loads(line) for line in (tmp_path / PREDICTIONS).read_text().splitlines()]
    assert [r["completion"] for r in resumed] == [r["completion"] for r in records]
    assert validate_file(tmp_path / PREDICTIONS) == []
    assert resumed_summary["generation"]["reused"] == 2
    assert resumed_summary["primary_score"] == summary["primary_score"]
