"""The generic predict-and-score loop: every evaluation in tunix goes through here.

:func:`evaluate_examples` renders each example's prompt with the chat template, generates
in batches, appends ``predictions.jsonl`` after every batch (a restarted evaluation keeps
what is there and generates only the missing ids), then hands all predictions to the
evaluators and writes ``eval_summary.json``. :func:`score_predictions` does the scoring
part for completions that already exist.

Each prediction line carries three verdicts. Evaluators decide them by returning per-item
fields of the same names (``extracted_answer``, ``correct``, ``format_ok``); the first
evaluator in the list that returns a field decides it. Without such an evaluator the core
falls back to its parser (``extracted_answer``: the ``<answer>`` block; ``format_ok``:
the exact format) and to ``answer_check`` (``correct``: :func:`check_answer`).
``decided_by`` in the summary says which applied. All per-item fields of an evaluator are
also kept under ``scores[<evaluator name>]``.

Whether an answer is correct is decided in one place, :func:`check_answer`: the answer
check named by the item's ``meta.answer_match`` (``auto`` when absent), looked up in the
registry that plugins fill through ``tunix_register_answer_checks``. The fallback, the
``accuracy`` evaluator and ``tunix eval --predictions`` all go through it.

``primary_score`` is answer accuracy: correct items / all items (docs/evaluation.md).
"""

from __future__ import annotations

import inspect
import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs

from tunix_core.data.parse import parse_completion
from tunix_core.data.record import DEFAULT_ANSWER_MATCH
from tunix_core.data.render import render_prompt
from tunix_core.decoding import DecodingOptions
from tunix_core.errors import ConfigError, DataError, EvidenceError, PluginError, TunixError
from tunix_core.evidence import schema_errors
from tunix_core.jsonio import append_jsonl, read_jsonl, write_json_atomic, write_text_atomic
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS, PRIMARY_METRIC
from tunix_core.protocols import (
    AnswerCheck,
    AnswerCheckRegistry,
    AnswerOptions,
    AnswerVerdict,
    Evaluator,
    Generator,
    ItemAnswerCheck,
    Prediction,
    RunContext,
)
from tunix_core.registry import RegistryError
from tunix_core.rundir import utc_now

if TYPE_CHECKING:
    from tunix_core.data.record import ReasoningExample
    from tunix_core.plugins import PluginHost

SUMMARY_VERSION = 1
GROUP_KEYS = ("section", "category", "difficulty")
VERDICT_FIELDS = ("extracted_answer", "correct", "format_ok")
UNKNOWN = "unknown"


def binomial_stderr(successes: int, n: int) -> float:
    """Standard error of a proportion, ``sqrt(p (1 - p) / n)``; 0 for no items."""
    if n <= 0:
        return 0.0
    p = successes / n
    return math.sqrt(p * (1 - p) / n)


def _rate(successes: int, n: int) -> float:
    return successes / n if n else 0.0


ANSWER_MATCH_FIELD = "answer_match"


def answer_checks_of(host: PluginHost) -> AnswerCheckRegistry:
    """The answer checks ``host``'s plugins registered."""
    return host.answer_checks


def answer_match_of(item_id: str, meta: Mapping[str, Any]) -> str:
    """The check an item names in ``meta.answer_match``; ``auto`` when it names none."""
    name = meta.get(ANSWER_MATCH_FIELD)
    if name is None:
        return DEFAULT_ANSWER_MATCH
    if not isinstance(name, str):
        raise DataError(f"item {item_id!r}: meta.{ANSWER_MATCH_FIELD} must be a string, "
                        f"got {type(name).__name__}")  # fmt: skip
    return name


def _load_check(item_id: str, name: str, checks: AnswerCheckRegistry) -> AnswerCheck:
    try:
        check: AnswerCheck = checks.load(name)
    except RegistryError as exc:
        raise DataError(f"item {item_id!r}: meta.{ANSWER_MATCH_FIELD}: {exc}") from None
    except (ImportError, AttributeError) as exc:
        entry = checks.entry(name)
        raise PluginError(f"answer check {name!r} from {entry.distribution} cannot be loaded "
                          f"from {entry.target!r}: {exc}") from None  # fmt: skip
    return check


def check_answer(
    prediction: Prediction,
    answer: str | None,
    checks: AnswerCheckRegistry,
    options: AnswerOptions | None = None,
) -> AnswerVerdict:
    """Whether ``answer`` (extracted from ``prediction.completion``; ``None`` when it has no
    answer block) is a correct answer to ``prediction``: the verdict of the check that the
    item's ``meta.answer_match`` names. The one place that picks the rule for an item."""
    name = answer_match_of(prediction.id, prediction.meta)
    check = _load_check(prediction.id, name, checks)
    if answer is None:
        return AnswerVerdict(False, "missing")
    options = options or AnswerOptions()
    try:
        if getattr(check, "takes_meta", False) is True:
            item_check = cast(ItemAnswerCheck, check)
            verdict = item_check(answer, prediction.expected, options, meta=prediction.meta)
        else:
            verdict = check(answer, prediction.expected, options)
    except ValueError as exc:
        raise DataError(f"item {prediction.id!r}: answer check {name!r}: {exc}") from None
    if not isinstance(verdict, AnswerVerdict):
        raise PluginError(f"answer check {name!r} returned {type(verdict).__name__}, "
                          "not an AnswerVerdict")  # fmt: skip
    return verdict


def require_answer_checks(
    examples: Sequence[ReasoningExample], checks: AnswerCheckRegistry, where: str
) -> None:
    """Raise :class:`DataError` when an example names an answer check that is not
    installed, or one that cannot judge its expected answer (``number`` for ``Paris``), before a
    model is asked anything: otherwise scoring, or a reward, fails in the middle of training
    or evaluation. Each check judges the item's expected answer as if a model gave it."""
    for example in examples:
        name = example.meta.answer_match
        if name not in checks:
            raise DataError(f"{where}: item {example.id!r}: meta.{ANSWER_MATCH_FIELD}: "
                            f"{checks.unknown_message(name)}")  # fmt: skip
        as_answered = Prediction(example.id, "", "", example.answer, example_meta(example))
        try:
            check_answer(as_answered, example.answer, checks)
        except DataError as exc:
            raise DataError(f"{where}: {exc}") from None


def _meta_of(meta: Mapping[str, Any]) -> dict[str, Any]:
    """Meta with the grouping keys always present (``unknown`` when missing)."""
    result = {k: v for k, v in meta.items() if v is None or isinstance(v, str | int | float | bool)}
    for key in GROUP_KEYS:
        value = result.get(key)
        result[key] = str(value) if value not in (None, "") else UNKNOWN
    return result


def base_record(prediction: Prediction, checks: AnswerCheckRegistry) -> dict[str, Any]:
    """A prediction line with the core's fallback verdicts and no evaluator scores."""
    parsed = parse_completion(prediction.completion)
    return {
        "id": prediction.id,
        "prompt": prediction.prompt,
        "completion": prediction.completion,
        "expected": prediction.expected,
        "extracted_answer": parsed.answer,
        "correct": check_answer(prediction, parsed.answer, checks).correct,
        "format_ok": parsed.format_exact,
        "meta": _meta_of(prediction.meta),
        "scores": {},
    }


def prediction_from_record(record: Mapping[str, Any]) -> Prediction:
    """The :class:`Prediction` a line of ``predictions.jsonl`` was made from."""
    return Prediction(
        id=str(record["id"]),
        prompt=str(record.get("prompt", "")),
        completion=str(record["completion"]),
        expected=str(record["expected"]),
        meta=dict(record.get("meta") or {}),
    )


def verdict_counts(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Items, and how many of them are correct and well formatted: a verdict counts only
    when it is ``true`` (validation counts records it has not schema-checked the same way)."""
    return {
        "items": len(records),
        "correct": sum(record.get("correct") is True for record in records),
        "format_ok": sum(record.get("format_ok") is True for record in records),
    }


def _group_stats(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    counts = verdict_counts(records)
    n, correct, format_ok = counts["items"], counts["correct"], counts["format_ok"]
    return {
        "n": n,
        "correct": correct,
        "answer_accuracy": _rate(correct, n),
        "answer_accuracy_stderr": binomial_stderr(correct, n),
        "format_ok": format_ok,
        "format_compliance": _rate(format_ok, n),
        "format_compliance_stderr": binomial_stderr(format_ok, n),
    }


def build_scorecard(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy and format compliance overall and by section, category and difficulty."""
    scorecard: dict[str, Any] = {"overall": _group_stats(records)}
    for key in GROUP_KEYS:
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for record in records:
            groups.setdefault(str(record["meta"].get(key, UNKNOWN)), []).append(record)
        scorecard[f"by_{key}"] = {
            name: _group_stats(items) for name, items in sorted(groups.items())
        }
    return scorecard


def _json_safe(value: Any, where: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise EvidenceError(f"{where} is not plain JSON data: {exc}") from None


def _apply_reports(
    records: list[dict[str, Any]],
    evaluators: Sequence[Evaluator],
    predictions: Sequence[Prediction],
    context: RunContext,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run every evaluator; merge per-item fields into ``records`` (by id, in place).
    Returns the metrics per evaluator and which evaluator decided each verdict."""
    by_id = {r["id"]: r for r in records}
    metrics: dict[str, Any] = {}
    decided_by = {"extracted_answer": "parser", "correct": "answer_check", "format_ok": "parser"}
    decided: set[str] = set()
    for evaluator in evaluators:
        name = evaluator.name
        if name in metrics:
            raise TunixError(f"two evaluators are named {name!r}; evaluator names must be unique")
        report = evaluator.evaluate(predictions, context=context)
        metrics[name] = _json_safe(dict(report.metrics), f"metrics of evaluator {name!r}")
        claimed: set[str] = set()
        for item_id, fields in report.per_item.items():
            if item_id not in by_id:
                raise EvidenceError(f"evaluator {name!r} scored an unknown id {item_id!r}")
            record = by_id[item_id]
            fields = _json_safe(dict(fields), f"per-item fields of evaluator {name!r}")
            record["scores"][name] = fields
            for verdict in VERDICT_FIELDS:
                if verdict in fields and verdict not in decided:
                    record[verdict] = fields[verdict]
                    claimed.add(verdict)
        for verdict in claimed:
            decided_by[verdict] = name
        decided |= claimed
    return metrics, decided_by


def _check_items(ids: Sequence[str], label: str) -> None:
    if not ids:
        raise TunixError(f"{label}: there is nothing to evaluate (no items)")
    seen: set[str] = set()
    for item_id in ids:
        if item_id in seen:
            raise TunixError(f"{label}: the id {item_id!r} appears more than once")
        seen.add(item_id)


def _score(
    predictions: Sequence[Prediction], evaluators: Sequence[Evaluator], *, label: str,
    generation: Mapping[str, Any] | None, source: Mapping[str, Any] | None,
    context: RunContext,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    _check_items([p.id for p in predictions], label)
    records = [base_record(p, context.answer_checks) for p in predictions]
    metrics, decided_by = _apply_reports(records, evaluators, predictions, context)
    for record in records:
        problems = schema_errors(record, "prediction")
        if problems:  # an evaluator returned a verdict of the wrong type
            raise EvidenceError(f"prediction {record['id']!r} is invalid: " + "; ".join(problems))
    scorecard = build_scorecard(records)
    overall = scorecard["overall"]
    summary = {
        "summary_version": SUMMARY_VERSION,
        "label": label,
        "created_at": utc_now(),
        "primary_metric": PRIMARY_METRIC,
        "primary_score": overall["answer_accuracy"],
        "primary_score_stderr": overall["answer_accuracy_stderr"],
        "counts": {
            "items": overall["n"],
            "correct": overall["correct"],
            "format_ok": overall["format_ok"],
            "answered": sum(bool((r["extracted_answer"] or "").strip()) for r in records),
        },
        "decided_by": decided_by,
        "scorecard": scorecard,
        "evaluators": metrics,
        "generation": dict(generation) if generation is not None else None,
        "source": dict(source or {}),
    }
    problems = schema_errors(summary, "eval_summary")
    if problems:
        raise EvidenceError(f"refusing to write an invalid {EVAL_SUMMARY}: " + "; ".join(problems))
    return records, summary


def _write_outputs(
    out_dir: Path, records: Iterable[Mapping[str, Any]], summary: Mapping[str, Any]
) -> None:
    text = "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)
    write_text_atomic(out_dir / PREDICTIONS, text)
    write_json_atomic(out_dir / EVAL_SUMMARY, summary)


def score_predictions(
    predictions: Sequence[Prediction],
    evaluators: Sequence[Evaluator],
    *,
    label: str,
    out_dir: Path | None = None,
    generation: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    context: RunContext,
) -> dict[str, Any]:
    """Score existing completions with ``evaluators`` and ``context``'s answer checks. With
    ``out_dir``, (re)write ``predictions.jsonl`` with every verdict and score, and
    ``eval_summary.json``. Returns the summary."""
    records, summary = _score(predictions, evaluators, label=label, generation=generation,
                              source=source, context=context)  # fmt: skip
    if out_dir is not None:
        _write_outputs(out_dir, records, summary)
    return summary


def _reusable_records(
    path: Path, prompts: Mapping[str, str], expected: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Lines of an earlier, interrupted call that still fit the items: same id, prompt and
    expected answer. The file is rewritten with only those, so appends stay well-formed."""
    if not path.exists():
        return []
    try:
        records = read_jsonl(path)
    except ValueError as exc:
        raise EvidenceError(f"cannot resume from {path}: {exc}; delete it to start over") from None
    kept: dict[str, dict[str, Any]] = {}
    for record in records:
        item_id = record.get("id")
        if (
            isinstance(item_id, str)
            and item_id not in kept
            and prompts.get(item_id) == record.get("prompt")
            and expected.get(item_id) == record.get("expected")
            and isinstance(record.get("completion"), str)
        ):
            kept[item_id] = record
    write_text_atomic(path, "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n"
                                    for r in kept.values()))  # fmt: skip
    return list(kept.values())


def example_meta(example: ReasoningExample) -> dict[str, str]:
    meta = example.meta
    result = {"category": meta.category, "section": meta.section,
              "difficulty": meta.difficulty, "source": meta.source}  # fmt: skip
    if meta.answer_match != DEFAULT_ANSWER_MATCH:  # absent means auto, as in record files
        result[ANSWER_MATCH_FIELD] = meta.answer_match
    # Flat, so a line of predictions.jsonl keeps them (its meta holds plain values) and
    # rescoring that file alone still finds them; record validation keeps the names apart.
    result.update(meta.extra)
    return result


def _duration_text(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


def generation_progress(label: str, finished: int, total: int, elapsed: float) -> str:
    """The line said after each batch when no progress bar is shown:
    ``[baseline] generated 16/48 (2.10 items/s, ETA 15 s)``."""
    rate = finished / max(elapsed, 1e-9)
    if finished < total:
        when = f"ETA {_duration_text((total - finished) / rate)}"
    else:
        when = f"took {_duration_text(elapsed)}"
    return f"[{label}] generated {finished}/{total} ({rate:.2f} items/s, {when})"


def _generation_bar(total: int, label: str) -> Any:
    """A tqdm bar on stderr (items/s, ETA) when stderr is a terminal and there is work;
    else ``None``, and each batch is reported as a :func:`generation_progress` line (a log
    file or CI output keeps lines, not carriage-return redraws)."""
    isatty = getattr(sys.stderr, "isatty", None)
    if total == 0 or isatty is None or not isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, unit="item", desc=label, dynamic_ncols=True)


def _decoding_guards(generator: Generator, decoding: DecodingOptions | None) -> dict[str, Any]:
    """The keyword arguments that give ``decoding``'s guards to ``generator``: none when no
    guard is set, or when the generator takes none and the guards are the defaults (it
    decodes plainly, and the summary records no guards); a ConfigError when the generator
    takes none and a guard was set to anything else."""
    if decoding is None or not decoding.active:
        return {}
    if "decoding" not in inspect.signature(generator.generate).parameters:
        if decoding.is_default:
            return {}
        raise ConfigError(f"eval.no_repeat_ngram_size, eval.reasoning_budget: the model's "
                          f"generator ({type(generator).__name__}) takes no decoding "
                          "options; set them to null")  # fmt: skip
    return {"decoding": decoding}


def _checked_guards(
    generator: Generator,
    examples: Sequence[ReasoningExample],
    *,
    max_new_tokens: int,
    batch_size: int,
    label: str,
    context: RunContext,
    decoding: DecodingOptions | None,
) -> dict[str, Any]:
    """Refuse bad settings and items before any generation is spent; the guards'
    keyword arguments for ``generator`` (:func:`_decoding_guards`)."""
    if batch_size < 1 or max_new_tokens < 1:
        raise TunixError(f"{label}: batch_size and max_new_tokens must be >= 1")
    guards = _decoding_guards(generator, decoding)
    _check_items([e.id for e in examples], label)
    require_answer_checks(examples, context.answer_checks, label)
    return guards


def _generate_batch(
    generator: Generator, prompts: list[str], max_new_tokens: int, guards: dict[str, Any], label: str
) -> list[str]:
    """One string per prompt from ``generator``, or a TunixError saying what came back."""
    completions = generator.generate(prompts, max_new_tokens=max_new_tokens, **guards)
    if len(completions) != len(prompts) or not all(isinstance(c, str) for c in completions):
        raise TunixError(f"{label}: the generator returned {len(completions)} completion(s) "
                         f"for {len(prompts)} prompt(s); it must return one string per prompt")  # fmt: skip
    return completions


def measure_examples(
    generator: Generator,
    examples: Sequence[ReasoningExample],
    evaluators: Sequence[Evaluator],
    *,
    system_prompt: str,
    max_new_tokens: int,
    batch_size: int,
    label: str,
    context: RunContext,
    decoding: DecodingOptions | None = None,
) -> dict[str, Any]:
    """Generate and score as :func:`evaluate_examples` does, but write nothing and resume
    nothing: the summary alone (``eval.during_training``, taken while a model trains)."""
    guards = _checked_guards(generator, examples, max_new_tokens=max_new_tokens,
                             batch_size=batch_size, label=label, context=context,
                             decoding=decoding)  # fmt: skip
    predictions = []
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        prompts = [render_prompt(e.question, system_prompt) for e in batch]
        completions = _generate_batch(generator, prompts, max_new_tokens, guards, label)
        predictions += [Prediction(e.id, p, c, e.answer, example_meta(e))
                        for e, p, c in zip(batch, prompts, completions, strict=True)]  # fmt: skip
    return score_predictions(predictions, evaluators, label=label, context=context)


def evaluate_examples(
    generator: Generator,
    examples: Sequence[ReasoningExample],
    evaluators: Sequence[Evaluator],
    *,
    system_prompt: str,
    max_new_tokens: int,
    batch_size: int,
    out_dir: Path,
    label: str,
    progress: Callable[[str], None] | None = None,
    source: Mapping[str, Any] | None = None,
    context: RunContext,
    decoding: DecodingOptions | None = None,
) -> dict[str, Any]:
    """Generate completions for ``examples`` (resuming an interrupted call in ``out_dir``),
    score them with ``evaluators`` and ``context``'s answer checks, and write
    ``predictions.jsonl`` and ``eval_summary.json``. Returns the summary. ``decoding``'s
    guards, when one is set, go to the generator (:class:`DecodingOptions`)."""
    guards = _checked_guards(generator, examples, max_new_tokens=max_new_tokens,
                             batch_size=batch_size, label=label, context=context,
                             decoding=decoding)  # fmt: skip
    checks = context.answer_checks
    say = progress or (lambda _message: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PREDICTIONS
    prompts = {e.id: render_prompt(e.question, system_prompt) for e in examples}
    expected = {e.id: e.answer for e in examples}
    done = {r["id"]: r for r in _reusable_records(path, prompts, expected)}
    pending = [e for e in examples if e.id not in done]
    if done:
        say(f"[{label}] reusing {len(done)} completion(s) from {path}")
    if pending:
        batches = math.ceil(len(pending) / batch_size)
        say(f"[{label}] generating {len(pending)} completion(s) in {batches} batch(es) of up to "
            f"{batch_size}, at most {max_new_tokens} new tokens each")  # fmt: skip
    bar = _generation_bar(len(pending), label)
    started = time.monotonic()
    try:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            completions = _generate_batch(generator, [prompts[e.id] for e in batch],
                                          max_new_tokens, guards, label)  # fmt: skip
            records = [
                base_record(Prediction(e.id, prompts[e.id], c, e.answer, example_meta(e)), checks)
                for e, c in zip(batch, completions, strict=True)
            ]
            append_jsonl(path, records)
            done.update((r["id"], r) for r in records)
            if bar is not None:
                bar.update(len(batch))
            else:
                say(generation_progress(label, start + len(batch), len(pending),
                                        time.monotonic() - started))  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    seconds = time.monotonic() - started
    # Meta from the items, not from the reused lines: those may predate meta.answer_match.
    predictions = [
        attrs.evolve(prediction_from_record(done[e.id]), meta=example_meta(e)) for e in examples
    ]
    generation = {
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "system_prompt": system_prompt,
        "generated": len(pending),
        "reused": len(examples) - len(pending),
        "seconds": round(seconds, 3),
        "items_per_second": round(len(pending) / seconds, 4) if pending and seconds > 0 else None,
    }
    if guards:
        generation["decoding"] = guards["decoding"].as_dict()
    summary = score_predictions(predictions, evaluators, label=label, out_dir=out_dir,
                                generation=generation, source=source,
                                context=context)  # fmt: skip
    headline = headline_metrics(summary)
    say(f"[{label}] answer accuracy {headline['answer_accuracy']:.1%}, "
        f"format compliance {headline['format_compliance']:.1%} over {len(examples)} item(s)")  # fmt: skip
    return summary


def split_result(summary: Mapping[str, Any], folder: Path, beside: Path) -> dict[str, Any]:
    """How a summary of another split (ood) is reported in the eval split's summary,
    under ``splits``: its overall scorecard, its items' sha256 and where its summary is
    (relative to ``beside``, the eval split's folder)."""
    return {
        **summary["scorecard"]["overall"],
        "dataset_sha256": summary["source"].get("dataset_sha256"),
        "summary": (folder / EVAL_SUMMARY).relative_to(beside).as_posix(),
    }


def headline_metrics(summary: Mapping[str, Any] | None) -> dict[str, float]:
    """``format_compliance`` and ``answer_accuracy`` of a summary; empty for ``None``."""
    if summary is None:
        return {}
    overall = summary["scorecard"]["overall"]
    return {
        "format_compliance": float(overall["format_compliance"]),
        "answer_accuracy": float(summary["primary_score"]),
    }


# The step metrics of ``eval.during_training``: ``eval/<split>_accuracy`` and ``_format``.
DURING_TRAINING_PREFIX = "eval/"


def during_training_names(split: str) -> tuple[str, str]:
    """The names of the answer accuracy and the format compliance of ``split``, evaluated
    during training, among a step's metrics."""
    return f"{DURING_TRAINING_PREFIX}{split}_accuracy", f"{DURING_TRAINING_PREFIX}{split}_format"


def during_training_metrics(split: str, summary: Mapping[str, Any]) -> dict[str, float]:
    """A training-time evaluation of ``split`` as the step metrics it adds."""
    headline = headline_metrics(summary)
    accuracy, form = during_training_names(split)
    return {accuracy: headline["answer_accuracy"], form: headline["format_compliance"]}


def read_summary(path: Path) -> dict[str, Any] | None:
    """The summary at ``path`` (checked against its schema), or ``None`` if there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        summary = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EvidenceError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    problems = schema_errors(summary, "eval_summary")
    if problems:
        raise EvidenceError(f"{path}: " + "; ".join(problems))
    result: dict[str, Any] = summary
    return result


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """The lines of a ``predictions.jsonl`` written by this module; ``[]`` if it is missing."""
    try:
        return read_jsonl(path)
    except FileNotFoundError:
        return []
    except ValueError as exc:
        raise EvidenceError(str(exc)) from None


__all__ = [
    "answer_checks_of",
    "answer_match_of",
    "base_record",
    "binomial_stderr",
    "build_scorecard",
    "check_answer",
    "during_training_metrics",
    "during_training_names",
    "evaluate_examples",
    "generation_progress",
    "headline_metrics",
    "measure_examples",
    "prediction_from_record",
    "read_predictions",
    "read_summary",
    "require_answer_checks",
    "score_predictions",
    "split_result",
    "verdict_counts",
]
