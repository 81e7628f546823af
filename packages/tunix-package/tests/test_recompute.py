"""Validation recomputes the evidence instead of trusting it: forged verdicts with matching
counts, an evaluation that is not the run's, changed eval items, unordered metrics, and
zips whose entries cannot be extracted safely."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tunix_core.errors import EvidenceError
from tunix_core.evaluation import binomial_stderr, build_scorecard, score_predictions
from tunix_core.evidence import sha256_file
from tunix_core.jsonio import read_jsonl
from tunix_core.layout import EVAL_SUMMARY, PREDICTIONS
from tunix_core.plugins import get_host
from tunix_core.protocols import Prediction, RunContext
from tunix_package.bundle import MANIFEST_NAME, SAMPLE_NAME, extract_zip
from tunix_package.kaggle import KagglePackager, export_evidence
from tunix_package.validation import run_directory_problems, validate_path


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))


def forge_all_correct(folder: Path) -> list[str]:
    """Mark every prediction in ``folder`` correct and make the summary agree with them,
    as someone inflating a score would. Returns the ids that were wrong."""
    records = read_jsonl(folder / PREDICTIONS)
    flipped = [r["id"] for r in records if not r["correct"]]
    for record in records:
        record["correct"] = True
    write_jsonl(folder / PREDICTIONS, records)
    summary = json.loads((folder / EVAL_SUMMARY).read_text())
    n = len(records)
    summary["counts"]["correct"] = n
    summary["primary_score"] = 1.0
    summary["primary_score_stderr"] = binomial_stderr(n, n)
    summary["scorecard"] = build_scorecard(records)
    (folder / EVAL_SUMMARY).write_text(json.dumps(summary))
    return flipped


def test_forged_verdicts_with_matching_counts_are_refused(make_run, options):
    run = make_run()
    flipped = forge_all_correct(run.path)
    assert flipped  # the fixture's final evaluation has wrong items
    problems = run_directory_problems(run.path, include_submission=False, context=RunContext(get_host()))
    for item_id in flipped:
        assert (f"{run.predictions_path}: item {item_id!r}: correct is True, but re-scoring "
                "gives False") in problems  # fmt: skip
    assert (f"{run.summary_path}: primary_score is 1.0, but re-scoring {run.predictions_path} "
            "gives 0.6666666666666666") in problems  # fmt: skip
    assert f"{run.summary_path}: counts.correct is 6, but re-scoring" in "\n".join(problems)
    with pytest.raises(EvidenceError, match="refusing to package"):
        KagglePackager().package(run, options, context=RunContext(get_host()))


def test_a_forged_evaluator_metric_is_refused(make_run, tmp_path):
    """Evaluators named in the summary are re-run through the plugin registry."""
    from tunix_core.plugins import get_host

    run = make_run()
    records = read_jsonl(run.predictions_path)
    predictions = [Prediction(r["id"], r["prompt"], r["completion"], r["expected"], r["meta"])
                   for r in records]  # fmt: skip
    evaluators = [get_host().evaluators.load(name)() for name in ("format", "accuracy", "trace")]
    out = tmp_path / "scored"
    score_predictions(predictions, evaluators, label="final", out_dir=out, context=RunContext(get_host()))
    assert validate_path(out / EVAL_SUMMARY, context=RunContext(get_host())) == []
    summary = json.loads((out / EVAL_SUMMARY).read_text())
    summary["evaluators"]["accuracy"]["correct"] += 1
    (out / EVAL_SUMMARY).write_text(json.dumps(summary))
    assert validate_path(out / EVAL_SUMMARY, context=RunContext(get_host())) == [
        f"{out / EVAL_SUMMARY}: evaluators.accuracy.correct is 5, but re-scoring "
        f"{out / PREDICTIONS} gives 4"
    ]


def test_a_forged_sample_in_a_bundle_is_refused(make_run, options, tmp_path):
    """The sample is re-scored too, so fixing MANIFEST's checksums does not help."""
    run = make_run()
    evidence = tmp_path / "evidence"
    export_evidence(KagglePackager().package(run, options, context=RunContext(get_host())), evidence)
    sample = read_jsonl(evidence / SAMPLE_NAME)
    forged = sample[0]
    forged["format_ok"] = not forged["format_ok"]
    write_jsonl(evidence / SAMPLE_NAME, sample)
    checksums = json.loads((evidence / MANIFEST_NAME).read_text())
    checksums["files"][SAMPLE_NAME] = {"sha256": sha256_file(evidence / SAMPLE_NAME),
                                      "bytes": (evidence / SAMPLE_NAME).stat().st_size}  # fmt: skip
    (evidence / MANIFEST_NAME).write_text(json.dumps(checksums))
    assert validate_path(evidence, context=RunContext(get_host())) == [
        f"{evidence / SAMPLE_NAME}: item {forged['id']!r}: format_ok is "
        f"{forged['format_ok']!r}, but re-scoring gives {not forged['format_ok']!r}"
    ]


def test_an_evaluation_of_another_file_stored_in_the_run_is_refused(make_run, options, tmp_path):
    """What `tunix eval --predictions other.jsonl --out runs/<id>` used to leave behind."""
    run = make_run()
    records = read_jsonl(run.predictions_path)
    other = [Prediction(r["id"], "", r["expected"], r["expected"], {}) for r in records]
    score_predictions(other, [], label="other", out_dir=run.path,
                      source={"predictions_file": "other.jsonl"}, context=RunContext(get_host()))  # fmt: skip
    problems = run_directory_problems(run.path, include_submission=False, context=RunContext(get_host()))
    assert problems == [
        f"{run.summary_path}: source.run is None, but {run.manifest_path} is run "
        f"{run.run_id!r}; this evaluation is not the run's own"
    ]
    with pytest.raises(EvidenceError, match="this evaluation is not the run's own"):
        KagglePackager().package(run, options, context=RunContext(get_host()))


def test_an_evaluation_of_another_model_is_refused(make_run):
    run = make_run()
    summary = json.loads(run.summary_path.read_text())
    summary["source"]["model_fingerprint"] = "0" * 64
    run.summary_path.write_text(json.dumps(summary))
    assert run_directory_problems(run.path, include_submission=False, context=RunContext(get_host())) == [
        f"{run.summary_path}: source.model_fingerprint is {'0' * 64!r}, but {run.manifest_path} "
        f"records {run.manifest['model_fingerprint']!r}"
    ]


def test_changed_eval_items_are_refused(make_run):
    run = make_run()
    run.eval_data_path.write_text(run.eval_data_path.read_text().replace('"7"', '"8"'))
    problems = run_directory_problems(run.path, include_submission=False, context=RunContext(get_host()))
    assert len(problems) == 1
    assert problems[0].startswith(f"{run.eval_data_path}: sha256 is ")
    assert problems[0].endswith("(the eval items changed after the dataset stage)")


def test_a_run_from_before_the_hashes_were_recorded_still_validates(make_run):
    run = make_run()
    del run.manifest["stages"]["dataset"]["detail"]["eval_sha256"]
    run.save()
    for path in (run.summary_path, run.baseline_summary_path):
        summary = json.loads(path.read_text())
        del summary["source"]["model_fingerprint"], summary["source"]["dataset_sha256"]
        path.write_text(json.dumps(summary))
    assert run_directory_problems(run.path, include_submission=False, context=RunContext(get_host())) == []


def test_metrics_steps_must_strictly_increase(make_run):
    run = make_run()
    records = read_jsonl(run.metrics_path)
    records[2]["step"] = 2
    write_jsonl(run.metrics_path, records)
    assert run_directory_problems(run.path, include_submission=False, context=RunContext(get_host())) == [
        f"{run.metrics_path}:3: step 2 does not follow step 2; steps must strictly increase"
    ]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"zz": b"a", "zz/y": b"b"}, "entry 'zz' is a file, but 'zz/y' needs it to be a folder"),
        ({".": b"a"}, "entry '.' is not a plain relative path (an empty or '.' part)"),
        ({"a//b": b"a"}, "entry 'a//b' is not a plain relative path (an empty or '.' part)"),
        ({"a/b": b"a", "a\\b": b"b"}, "entry 'a\\\\b' appears more than once"),
    ],
)
def test_zip_entries_that_cannot_be_extracted_are_refused(tmp_path, entries, expected):
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    assert validate_path(bundle, context=RunContext(get_host())) == [f"{bundle}: {expected}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.zip"]


def test_extraction_stops_at_its_byte_limit(tmp_path):
    """Counted while streaming, so a header that understates a size cannot get past it."""
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("run.log", b"\0" * 200_000)
    out = tmp_path / "out"
    with zipfile.ZipFile(bundle) as archive, pytest.raises(EvidenceError, match="went past 100,000 bytes"):
        extract_zip(archive, out, limit=100_000)
    assert (out / "run.log").stat().st_size <= 100_000
