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
(:class:`tunix_core.protocols.SamplingModel`); nothing here imports JAX.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from tunix_core.data.parse import parse_completion
from tunix_core.data.record import FieldError, ReasoningExample, example_to_dict
from tunix_core.data.render import render_prompt
from tunix_core.errors import ConfigError, TunixError
from tunix_core.evaluation import check_answer, example_meta, require_answer_checks
from tunix_core.jsonio import append_jsonl, read_jsonl, write_json_atomic, write_text_atomic
from tunix_core.layout import model_id
from tunix_core.plugins import PluginHost, backend_for, validate_spec
from tunix_core.protocols import AnswerCheckRegistry, ModelSpec, Prediction, SamplingModel
from tunix_core.rundir import utc_now

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


def _at_least(minimum: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value < minimum:
            raise ConfigError(f"--{attribute.name.replace('_', '-')}: must be at least "
                              f"{minimum}, got {value}")  # fmt: skip

    return check


def _probability(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"--top-p: must be in (0, 1], got {value}")


@attrs.frozen
class Sampling:
    """How the teacher is asked: ``samples`` completions per question, ``batch_size``
    questions per call; the call for batch ``i`` (counted over the whole split) draws with
    seed ``seed + i``, so a rerun draws what an uninterrupted run would have."""

    samples: int = attrs.field(validator=_at_least(1))
    temperature: float = attrs.field(validator=_at_least(0.0))
    top_p: float = attrs.field(validator=_probability)
    max_new_tokens: int = attrs.field(validator=_at_least(1))
    seed: int
    batch_size: int = attrs.field(validator=_at_least(1))
    system_prompt: str


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


def open_teacher(host: PluginHost, teacher: Teacher,
                 progress: Callable[[str], None]) -> SamplingModel:  # fmt: skip
    """The teacher model, loaded through its backend (which says so on ``progress``);
    :class:`ConfigError` naming the flag
    when the backend is unknown, the preset or weights are not loadable, or the backend's
    models cannot draw samples."""
    backend = backend_for(host, teacher.backend, "--backend")
    validate_spec(backend, teacher.spec(), FLAG_OF_FIELD)
    model = backend.load(teacher.spec(), progress=progress)
    if not isinstance(model, SamplingModel):
        raise ConfigError(
            f"--backend {teacher.backend}: its models cannot draw samples (no sample(); "
            "tunix distill needs tunix_core.protocols.SamplingModel)"
        )
    return model


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


def _differences(earlier: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: earlier -> now`` for every leaf that differs between two settings dicts."""
    found: list[str] = []
    for key in sorted(earlier.keys() | now.keys()):
        old, new = earlier.get(key), now.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += _differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return found


@attrs.frozen
class _Earlier:
    """What an earlier distillation into the same folder left."""

    lines: list[dict[str, Any]]
    seconds: float
    created_at: str | None


def _resume(out: Path, settings: Mapping[str, Any]) -> _Earlier:
    """The questions log of an earlier distillation with equal ``settings`` in ``out``,
    the seconds it took and when it started. Rewrites the log (dropping a line an interrupt
    cut short) and ``distilled.jsonl`` from it, so both end where the log ends. Nothing
    for a new folder."""
    manifest_path, log_path = out / MANIFEST, out / QUESTIONS_LOG
    if not manifest_path.is_file():
        leftovers = [name for name in (DISTILLED, QUESTIONS_LOG) if (out / name).exists()]
        if leftovers:
            raise TunixError(f"--out {out} holds {', '.join(leftovers)} but no {MANIFEST}: it "
                             "is not a distillation this command can continue; choose another --out")  # fmt: skip
        return _Earlier([], 0.0, None)
    try:
        earlier = _read_manifest(manifest_path)
    except ValueError as exc:
        raise TunixError(f"{manifest_path}: {exc}") from None
    changed = _differences(earlier.get("settings") or {}, settings)
    if changed:
        raise TunixError(f"--out {out} holds a distillation made with other settings "
                         f"({'; '.join(changed)}); rerun with the same settings to continue "
                         "it, or choose another --out")  # fmt: skip
    try:
        lines = read_jsonl(log_path) if log_path.exists() else []
    except ValueError as exc:
        raise TunixError(str(exc)) from None
    write_text_atomic(log_path, "".join(_json_line(line) for line in lines))
    records = [s["record"] for line in lines for s in line["samples"] if "record" in s]
    write_text_atomic(out / DISTILLED, "".join(_json_line(record) for record in records))
    return _Earlier(lines, float(earlier.get("seconds") or 0.0), earlier.get("created_at"))


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
        raise ValueError(f"not a distillation manifest (manifest_version {MANIFEST_VERSION})")
    return data


def _json_line(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False) + "\n"


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
    out.mkdir(parents=True, exist_ok=True)
    settings_dict = settings.as_dict(judge)
    earlier = _resume(out, settings_dict)
    tally = Tally()
    for line in earlier.lines:
        tally.add(line)
    done = {line["id"] for line in earlier.lines}
    seconds = earlier.seconds
    created = earlier.created_at or utc_now()

    def write_manifest() -> dict[str, Any]:
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "created_at": created,
            "updated_at": utc_now(),
            "command": list(command),
            "settings": settings_dict,
            "questions_total": len(examples),
            "complete": all(example.id in done for example in examples),
            "seconds": round(seconds, 3),
            "files": {"records": DISTILLED, "questions": QUESTIONS_LOG},
            **tally.as_dict(),
        }
        write_json_atomic(out / MANIFEST, manifest)
        return manifest

    manifest = write_manifest()
    sampling = settings.sampling
    size = sampling.batch_size
    batches = [examples[start : start + size] for start in range(0, len(examples), size)]
    todo = sum(example.id not in done for example in examples)
    progress(f"[distill] {todo} of {len(examples)} question(s) of {settings.dataset} "
             f"({settings.split}) to answer, {sampling.samples} sample(s) each, with "
             f"{settings.teacher.model_id} via {settings.teacher.backend}"
             + (f"; {len(done)} already done in {out}" if done else ""))  # fmt: skip
    for number, whole_batch in enumerate(batches):
        batch = [example for example in whole_batch if example.id not in done]
        if not batch:
            continue
        started = time.perf_counter()
        prompts = [render_prompt(example.question, sampling.system_prompt) for example in batch]
        completions = model.sample(
            [prompt for prompt in prompts for _ in range(sampling.samples)],
            max_new_tokens=sampling.max_new_tokens, temperature=sampling.temperature,
            top_p=sampling.top_p, seed=sampling.seed + number,
        )  # fmt: skip
        if len(completions) != len(batch) * sampling.samples:
            raise TunixError(f"the teacher returned {len(completions)} completions for "
                             f"{len(batch) * sampling.samples} prompts")  # fmt: skip
        new_lines = _decide_batch(batch, prompts, completions, settings, checks, judge)
        # The log first: a record whose question is not in the log is rebuilt on a rerun.
        append_jsonl(out / QUESTIONS_LOG, new_lines)
        append_jsonl(out / DISTILLED, [s["record"] for line in new_lines
                                       for s in line["samples"] if "record" in s])  # fmt: skip
        for line in new_lines:
            tally.add(line)
            done.add(line["id"])
        took = time.perf_counter() - started
        seconds += took
        manifest = write_manifest()
        batch_kept = sum(s["verdict"] == KEPT for line in new_lines for s in line["samples"])
        fraction = manifest["kept_fraction"]
        progress(f"[distill] batch {number + 1}/{len(batches)}: kept {batch_kept}/"
                 f"{len(batch) * sampling.samples} sample(s) in {took:.1f} s; total "
                 f"{manifest['kept']}/{manifest['samples']} ({fraction:.1%}), "
                 f"{manifest['questions_done']}/{len(examples)} question(s)")  # fmt: skip
    return manifest
