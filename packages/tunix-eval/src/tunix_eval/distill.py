"""Distillation: a teacher model answers every question of a dataset K times in the
competition format, and the answers that hold up become a new dataset in the record format.

A sample is kept when it has a non-empty ``<reasoning>`` and ``<answer>`` and its answer
passes the item's own answer check (:func:`tunix_core.evaluation.check_answer`, the rule
``meta.answer_match`` names). Items of the categories a :class:`SampleJudge` covers (those
without a checkable reference: creative writing, summaries) are kept instead when the judge
accepts them. A kept sample becomes a record: the item's question and meta, the sample's
reasoning, and the item's reference answer (the sample's own answer when a judge decided).

The output folder holds three files:

- ``distilled.jsonl``: the kept samples as records (read back with
  :func:`tunix_core.data.record.read_jsonl`, trained on with ``--dataset jsonl:PATH``);
- ``questions.jsonl``: one line per question done, with every sample, its verdict and (when
  kept) its record; a rerun resumes from it and rebuilds ``distilled.jsonl`` from it;
- ``manifest.json``: teacher, data, sampling and judge settings and the kept/total counts
  per category, rewritten atomically after every batch.

The teacher is reached through a model backend and must draw samples
(:class:`tunix_core.protocols.SamplingModel`); nothing here imports JAX. The batches, the
questions log and the resume are :mod:`tunix_eval.sampling_job`'s, which ``tunix pairs``
shares.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.data.parse import parse_completion
from tunix_core.data.record import FieldError, ReasoningExample, example_to_dict
from tunix_core.errors import TunixError
from tunix_core.evaluation import check_answer, example_meta, require_answer_checks
from tunix_core.layout import model_id
from tunix_core.plugins import PluginHost, backend_for, validate_spec
from tunix_core.protocols import AnswerCheckRegistry, ModelSpec, Prediction, SamplingModel
from tunix_eval.sampling_job import Sampling, SamplingJob, require_sampling, run_job

DISTILLED = "distilled.jsonl"
QUESTIONS_LOG = "questions.jsonl"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1

# What became of a sample, in the order the checks run.
KEPT = "kept"
NO_ANSWER = "no_answer"
NO_REASONING = "no_reasoning"
WRONG_ANSWER = "wrong_answer"
JUDGE_REJECTED = "judge_rejected"
JUDGE_UNSCORED = "judge_unscored"
DUPLICATE = "duplicate"  # the same reasoning as a sample of the question kept before it
INVALID_RECORD = "invalid_record"  # e.g. the reasoning holds the format's own markup
VERDICTS = (KEPT, NO_ANSWER, NO_REASONING, WRONG_ANSWER, JUDGE_REJECTED, JUDGE_UNSCORED,
            DUPLICATE, INVALID_RECORD)  # fmt: skip

# The command-line flag that sets each model.* field a backend's validate() may name.
FLAG_OF_FIELD = {"model.preset": "--teacher-preset", "model.weights": "--teacher-weights"}


@attrs.frozen
class Teacher:
    """Which model answers: a preset and weights spec of a model backend."""

    backend: str
    preset: str
    weights: str

    def spec(self) -> ModelSpec:
        return ModelSpec(self.preset, self.weights)

    @property
    def model_id(self) -> str:
        return model_id(self.preset, self.weights)


@attrs.frozen
class SampleJudge:
    """Decides the samples of questions whose category is in ``categories``: ``verdicts``
    returns, per prediction, True (keep), False (reject) or None (no verdict: rejected).
    ``settings`` (plain data) describe the judge in the manifest."""

    categories: frozenset[str]
    verdicts: Callable[[Sequence[Prediction]], Sequence[bool | None]]
    settings: Mapping[str, Any]


@attrs.frozen
class DistillSettings:
    """Everything that decides what a distillation produces; a rerun into the same folder
    must use equal settings. The number of questions is not among them: a rerun with a
    larger ``--limit`` extends a distillation."""

    teacher: Teacher
    dataset: str
    split: str
    sampling: Sampling
    dataset_options: Mapping[str, Any] = attrs.field(factory=dict)

    def as_dict(self, judge: SampleJudge | None) -> dict[str, Any]:
        """Plain data for the manifest, with ``judge``'s settings (None without one)."""
        return {
            "teacher": {**attrs.asdict(self.teacher), "model_id": self.teacher.model_id},
            "data": {"dataset": self.dataset, "split": self.split,
                     "options": dict(self.dataset_options)},
            "sampling": attrs.asdict(self.sampling),
            "judge": None if judge is None else {**judge.settings,
                                                 "categories": sorted(judge.categories)},
        }


def open_teacher(host: PluginHost, teacher: Teacher, progress: Callable[[str], None], *,
                 flags: Mapping[str, str] = FLAG_OF_FIELD,
                 command: str = "tunix distill") -> SamplingModel:  # fmt: skip
    """The teacher model, loaded through its backend (which says so on ``progress``);
    :class:`ConfigError` naming the flag (``flags``: the flag of each ``model.*`` field)
    when the backend is unknown, the preset or weights are not loadable, or the backend's
    models cannot draw samples (which ``command`` needs)."""
    backend = backend_for(host, teacher.backend, "--backend")
    validate_spec(backend, teacher.spec(), flags)
    model = backend.load(teacher.spec(), progress=progress)
    return require_sampling(model, f"--backend {teacher.backend}", command)


@attrs.define
class Tally:
    """Counts over the questions done, overall and per category."""

    questions: Counter[str] = attrs.field(factory=Counter)
    questions_kept: Counter[str] = attrs.field(factory=Counter)  # with at least one sample kept
    samples: Counter[str] = attrs.field(factory=Counter)
    kept: Counter[str] = attrs.field(factory=Counter)
    verdicts: Counter[str] = attrs.field(factory=Counter)

    def add(self, line: Mapping[str, Any]) -> None:
        """Count one line of the questions log."""
        category = line["category"]
        verdicts = [sample["verdict"] for sample in line["samples"]]
        kept = verdicts.count(KEPT)
        self.questions[category] += 1
        self.questions_kept[category] += kept > 0
        self.samples[category] += len(verdicts)
        self.kept[category] += kept
        self.verdicts.update(verdicts)

    def as_dict(self) -> dict[str, Any]:
        samples, kept = sum(self.samples.values()), sum(self.kept.values())
        return {
            "questions_done": sum(self.questions.values()),
            "questions_with_kept_samples": sum(self.questions_kept.values()),
            "samples": samples,
            "kept": kept,
            "kept_fraction": kept / samples if samples else None,
            "verdicts": {verdict: self.verdicts[verdict] for verdict in VERDICTS},
            "by_category": {
                category: {
                    "questions": self.questions[category],
                    "questions_with_kept_samples": self.questions_kept[category],
                    "samples": self.samples[category],
                    "kept": self.kept[category],
                }
                for category in sorted(self.questions)
            },
        }


@attrs.frozen
class _Candidate:
    """A sample that has reasoning and an answer, waiting for its verdict."""

    index: int
    completion: str
    reasoning: str
    answer: str


def _candidate(index: int, completion: str) -> _Candidate | str:
    """The sample as a candidate, or why it is none (NO_ANSWER, NO_REASONING)."""
    parsed = parse_completion(completion)
    if not parsed.answer:
        return NO_ANSWER
    if not parsed.reasoning:
        return NO_REASONING
    return _Candidate(index, completion, parsed.reasoning, parsed.answer)


def _record(example: ReasoningExample, candidate: _Candidate, judged: bool,
            teacher: Teacher, dataset: str) -> dict[str, Any]:  # fmt: skip
    """The record a kept sample becomes; :class:`FieldError` when the sample's text
    breaks a record rule."""
    origin = example.meta.source or dataset
    distilled = ReasoningExample(
        id=_sample_id(example, candidate.index),
        question=example.question,
        steps=(),
        reasoning=candidate.reasoning,
        answer=candidate.answer if judged else example.answer,
        # Everything else of the item's meta (its answer check, too) carries over.
        meta=attrs.evolve(example.meta, source=f"distilled by {teacher.model_id} from {origin}"),
    )
    return example_to_dict(distilled)


def _sample_id(example: ReasoningExample, index: int) -> str:
    """The id of sample ``index`` of ``example``: as a prediction, and as a kept record."""
    return f"{example.id}/s{index}"


def _decide_batch(
    batch: Sequence[ReasoningExample],
    prompts: Sequence[str],
    completions: Sequence[str],
    settings: DistillSettings,
    checks: AnswerCheckRegistry,
    judge: SampleJudge | None,
) -> list[dict[str, Any]]:
    """The questions-log lines of one batch: every sample with its verdict and, for kept
    samples, the record."""
    k = settings.sampling.samples
    verdicts: dict[tuple[int, int], str] = {}
    candidates: dict[tuple[int, int], _Candidate] = {}
    to_judge: list[tuple[tuple[int, int], Prediction]] = []
    for q, example in enumerate(batch):
        judged = judge is not None and example.meta.category in judge.categories
        for index in range(k):
            completion = completions[q * k + index]
            candidate = _candidate(index, completion)
            if isinstance(candidate, str):
                verdicts[q, index] = candidate
                continue
            candidates[q, index] = candidate
            prediction = Prediction(
                id=_sample_id(example, index), prompt=prompts[q], completion=completion,
                expected=example.answer, meta=example_meta(example),
            )  # fmt: skip
            if judged:
                to_judge.append(((q, index), prediction))
            else:
                correct = check_answer(prediction, candidate.answer, checks).correct
                verdicts[q, index] = KEPT if correct else WRONG_ANSWER
    if to_judge:
        assert judge is not None  # only judged categories are queued
        said = list(judge.verdicts([prediction for _, prediction in to_judge]))
        if len(said) != len(to_judge):
            raise TunixError(f"the judge returned {len(said)} verdicts for {len(to_judge)} samples")
        for (key, _), accepted in zip(to_judge, said, strict=True):
            verdicts[key] = JUDGE_UNSCORED if accepted is None else KEPT if accepted else JUDGE_REJECTED

    lines = []
    for q, example in enumerate(batch):
        judged = judge is not None and example.meta.category in judge.categories
        seen_reasoning: set[str] = set()
        samples: list[dict[str, Any]] = []
        for index in range(k):
            sample: dict[str, Any] = {"completion": completions[q * k + index]}
            verdict = verdicts[q, index]
            if verdict == KEPT:
                candidate = candidates[q, index]
                if candidate.reasoning in seen_reasoning:
                    verdict = DUPLICATE
                else:
                    try:
                        sample["record"] = _record(example, candidate, judged,
                                                   settings.teacher, settings.dataset)  # fmt: skip
                        seen_reasoning.add(candidate.reasoning)
                    except FieldError as exc:
                        verdict = INVALID_RECORD
                        sample["problem"] = str(exc)
            sample["verdict"] = verdict
            samples.append(sample)
        lines.append({"id": example.id, "category": example.meta.category,
                      "judged": judged, "samples": samples})  # fmt: skip
    return lines


def distill(
    model: SamplingModel,
    examples: Sequence[ReasoningExample],
    settings: DistillSettings,
    out: Path,
    *,
    checks: AnswerCheckRegistry,
    judge: SampleJudge | None = None,
    progress: Callable[[str], None] = lambda message: None,
    command: Sequence[str] = (),
) -> dict[str, Any]:
    """Distil ``examples`` into ``out`` (see the module docstring), continuing what an
    earlier run with equal ``settings`` left there. Returns the final manifest."""
    checked = [e for e in examples if judge is None or e.meta.category not in judge.categories]
    require_answer_checks(checked, checks, f"dataset {settings.dataset!r}")
    samples = settings.sampling.samples

    def batch_summary(lines: Sequence[Mapping[str, Any]]) -> str:
        kept = sum(s["verdict"] == KEPT for line in lines for s in line["samples"])
        return f"kept {kept}/{len(lines) * samples} sample(s)"

    def total_summary(manifest: Mapping[str, Any]) -> str:
        return f"{manifest['kept']}/{manifest['samples']} ({manifest['kept_fraction']:.1%})"

    job = SamplingJob(
        name="distill",
        kind="a distillation",
        out=out,
        log_path=out / QUESTIONS_LOG,
        output_path=out / DISTILLED,
        manifest_path=out / MANIFEST,
        version=("manifest_version", MANIFEST_VERSION),
        settings=settings.as_dict(judge),
        files={"records": DISTILLED, "questions": QUESTIONS_LOG},
        source=f"of {settings.dataset} ({settings.split}) to answer with "
        f"{settings.teacher.model_id} via {settings.teacher.backend}",
        decide=lambda batch, prompts, completions: _decide_batch(
            batch, prompts, completions, settings, checks, judge
        ),
        outputs=lambda line: [s["record"] for s in line["samples"] if "record" in s],
        batch_summary=batch_summary,
        total_summary=total_summary,
    )
    return run_job(model, examples, settings.sampling, job, Tally(), progress=progress,
                   command=command)  # fmt: skip
