"""On-policy preference pairs: a model answers every question of a dataset K times, and
each question gives at most one pair of its own answers, one preferred to the other, for
the ``dpo``, ``simpo`` and ``orpo`` trainers (``trainer.options.pairs``).

Each sample is put in one class:

- ``accepted``: in the exact competition format (the strict check of the ``format``
  evaluator and reward, :func:`tunix_core.data.parse.parse_completion`) and its answer
  passes the item's answer check (:func:`tunix_core.evaluation.check_answer`, the rule
  ``meta.answer_match`` names);
- ``wrong_answer``: in the exact format, with an answer the check rejects;
- ``broken_format``: not in the exact format;
- ``empty``: nothing but whitespace (a preference record cannot hold an empty reply).

A question's pair, first that applies, by sample order:

- category ``answer``: chosen an ``accepted`` sample, rejected a ``wrong_answer`` one;
- category ``format``: chosen a formatted sample (accepted or not), rejected a
  ``broken_format`` one.

A question without a pair is counted by its reason: ``all_correct`` (its formatted
samples are all accepted and none is broken), ``all_wrong`` (formatted, all wrong, none
broken) or ``all_broken`` (none formatted). Empty samples never count against a pair.

``--out FILE.jsonl`` gets two files beside it: ``FILE.questions.jsonl``, the questions
log (every sample with its class), and ``FILE.summary.json``, the settings and counts.
Sampling, the log and the resume are :mod:`tunix_eval.sampling_job`'s, as for
``tunix distill``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.data.parse import parse_completion
from tunix_core.data.record import ReasoningExample
from tunix_core.data.render import END_OF_TURN
from tunix_core.errors import ConfigError
from tunix_core.evaluation import check_answer, example_meta, require_answer_checks
from tunix_core.protocols import AnswerCheckRegistry, Prediction, SamplingModel
from tunix_eval.sampling_job import Sampling, SamplingJob, run_job

SUMMARY_VERSION = 1

# Sample classes.
ACCEPTED = "accepted"
WRONG_ANSWER = "wrong_answer"
BROKEN_FORMAT = "broken_format"
EMPTY = "empty"
CLASSES = (ACCEPTED, WRONG_ANSWER, BROKEN_FORMAT, EMPTY)
# Pair categories.
ANSWER = "answer"
FORMAT = "format"
CATEGORIES = (ANSWER, FORMAT)
# Why a question has no pair.
ALL_CORRECT = "all_correct"
ALL_WRONG = "all_wrong"
ALL_BROKEN = "all_broken"
REASONS = (ALL_CORRECT, ALL_WRONG, ALL_BROKEN)


@attrs.frozen
class PairFiles:
    """Where ``--out FILE.jsonl``'s pairs, questions log and summary go."""

    pairs: Path
    questions: Path
    summary: Path

    @classmethod
    def beside(cls, out: Path) -> PairFiles:
        if out.suffix != ".jsonl":
            raise ConfigError(f"--out {out}: must name a .jsonl file (the pairs)")
        return cls(out, out.with_suffix(".questions.jsonl"), out.with_suffix(".summary.json"))


def _two_or_more(_: Any, __: attrs.Attribute[Any], sampling: Sampling) -> None:
    if sampling.samples < 2:
        raise ConfigError(f"--samples: must be at least 2 (a pair needs two answers), "
                          f"got {sampling.samples}")  # fmt: skip


@attrs.frozen
class PairsSettings:
    """Everything that decides the pairs; a rerun into the same file must use equal
    settings. ``model`` (plain data) says which model answers: a run directory, or a
    backend's preset and weights. ``--limit`` is not a setting: a larger one extends."""

    model: Mapping[str, Any]
    dataset: str
    split: str
    sampling: Sampling = attrs.field(validator=_two_or_more)
    dataset_options: Mapping[str, Any] = attrs.field(factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "data": {
                "dataset": self.dataset,
                "split": self.split,
                "options": dict(self.dataset_options),
            },
            "sampling": attrs.asdict(self.sampling),
        }


def classify(sample: Prediction, checks: AnswerCheckRegistry) -> str:
    """The class of one sample (see the module docstring)."""
    if not sample.completion.strip().removesuffix(END_OF_TURN).strip():
        return EMPTY
    parsed = parse_completion(sample.completion)
    if not parsed.format_exact:
        return BROKEN_FORMAT
    return ACCEPTED if check_answer(sample, parsed.answer, checks).correct else WRONG_ANSWER


def choose_pair(classes: Sequence[str]) -> tuple[str, int, int] | str:
    """``(category, chosen index, rejected index)`` for samples of ``classes``, or the
    reason there is no pair."""

    def first(*wanted: str) -> int | None:
        return next((index for index, kind in enumerate(classes) if kind in wanted), None)

    accepted, wrong, broken = first(ACCEPTED), first(WRONG_ANSWER), first(BROKEN_FORMAT)
    if accepted is not None and wrong is not None:
        return ANSWER, accepted, wrong
    formatted = first(ACCEPTED, WRONG_ANSWER)
    if formatted is not None and broken is not None:
        return FORMAT, formatted, broken
    if formatted is None:
        return ALL_BROKEN
    return ALL_CORRECT if accepted is not None else ALL_WRONG


def _decide_batch(
    batch: Sequence[ReasoningExample],
    prompts: Sequence[str],
    completions: Sequence[str],
    samples: int,
    checks: AnswerCheckRegistry,
) -> list[dict[str, Any]]:
    """The questions-log lines of one batch: every sample with its class, and the pair or
    the reason there is none."""
    lines = []
    for q, example in enumerate(batch):
        drawn = completions[q * samples : (q + 1) * samples]
        meta = example_meta(example)
        classes = [classify(Prediction(example.id, prompts[q], text, example.answer, meta), checks)
                   for text in drawn]  # fmt: skip
        line: dict[str, Any] = {
            "id": example.id,
            "category": example.meta.category,
            "samples": [
                {"completion": text, "class": kind}
                for text, kind in zip(drawn, classes, strict=True)
            ],
        }
        chosen = choose_pair(classes)
        if isinstance(chosen, str):
            line["unpaired"] = chosen
        else:
            category, chosen_index, rejected_index = chosen
            # What trainer.options.pairs reads (prompt, chosen, rejected); it ignores the rest.
            line["pair"] = {
                "id": example.id,
                "category": category,
                "prompt": example.question,
                "chosen": drawn[chosen_index],
                "rejected": drawn[rejected_index],
            }
        lines.append(line)
    return lines


@attrs.define
class PairTally:
    """Counts over the questions done: pairs per category, questions without one per
    reason, samples per class."""

    questions: int = 0
    pairs: Counter[str] = attrs.field(factory=Counter)
    unpaired: Counter[str] = attrs.field(factory=Counter)
    classes: Counter[str] = attrs.field(factory=Counter)

    def add(self, line: Mapping[str, Any]) -> None:
        self.questions += 1
        if "pair" in line:
            self.pairs[line["pair"]["category"]] += 1
        else:
            self.unpaired[line["unpaired"]] += 1
        self.classes.update(sample["class"] for sample in line["samples"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "questions_done": self.questions,
            "pairs": sum(self.pairs.values()),
            "pairs_by_category": {category: self.pairs[category] for category in CATEGORIES},
            "unpaired": sum(self.unpaired.values()),
            "unpaired_by_reason": {reason: self.unpaired[reason] for reason in REASONS},
            "samples": sum(self.classes.values()),
            "samples_by_class": {kind: self.classes[kind] for kind in CLASSES},
        }


def pairs_job(
    settings: PairsSettings, out: Path, *, checks: AnswerCheckRegistry, model_label: str
) -> SamplingJob:
    """The sampling job that writes ``settings``' pairs to ``out`` (a ``.jsonl`` file);
    ``model_label`` names the model in progress lines."""
    files = PairFiles.beside(out)
    return SamplingJob(
        name="pairs",
        kind="a pairs file",
        out=out,
        log_path=files.questions,
        output_path=files.pairs,
        manifest_path=files.summary,
        version=("pairs_version", SUMMARY_VERSION),
        settings=settings.as_dict(),
        files={"pairs": files.pairs.name, "questions": files.questions.name},
        source=f"of {settings.dataset} ({settings.split}) to answer with {model_label}",
        decide=lambda batch, prompts, completions: _decide_batch(
            batch, prompts, completions, settings.sampling.samples, checks
        ),
        outputs=lambda line: [line["pair"]] if "pair" in line else [],
        batch_summary=lambda lines: (
            f"{sum('pair' in line for line in lines)} pair(s) from {len(lines)} question(s)"
        ),
        total_summary=lambda summary: f"{summary['pairs']} pair(s)",
    )


def build_pairs(
    model: SamplingModel,
    examples: Sequence[ReasoningExample],
    settings: PairsSettings,
    out: Path,
    *,
    checks: AnswerCheckRegistry,
    model_label: str,
    progress: Callable[[str], None] = lambda message: None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the pairs of ``examples`` to ``out`` (a ``.jsonl`` file; see the module
    docstring), continuing what an earlier run with equal ``settings`` left there;
    ``model_label`` names the model in progress lines. Returns the final summary."""
    require_answer_checks(examples, checks, f"dataset {settings.dataset!r}")
    job = pairs_job(settings, out, checks=checks, model_label=model_label)
    return run_job(model, examples, settings.sampling, job, PairTally(), progress=progress,
                   command=command)  # fmt: skip
