"""The ``kaggle`` packager: a small, reproducible zip of the run's evidence, with the model
export beside it and a round trip that proves the export loads back.

``submission/`` after packaging::

    <run-name>_<YYYYmmdd>_<shortsha>.zip   evidence, README_SUBMISSION.md, MANIFEST
    model/                                 params (Orbax, upstream layout), adapters (LoRA),
                                           tokenizer, config, probe: hard links to the
                                           run's model/ (see link_tree)
    report.html                            the run's report (tunix_eval.report_html); in
                                           the zip too with ``include_report: true``

All three are built and validated in a new folder beside it, which replaces the previous
``submission/`` only once it is good.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunix_core.errors import ConfigError, EvidenceError
from tunix_core.jsonio import read_jsonl, write_text_atomic
from tunix_core.layout import (
    CONFIG,
    EVAL_SUMMARY,
    LOG,
    MANIFEST,
    METRICS,
    MODEL,
    MODEL_CONFIG,
    REPORT,
)
from tunix_core.protocols import ModelBackend, RunContext
from tunix_core.registry import RegistryError
from tunix_core.rundir import RunDirectory
from tunix_core.types import TrainDetail
from tunix_eval.report_html import gather, render_html
from tunix_package.bundle import (
    BASELINE_SUMMARY,
    DEFAULT_MAX_BUNDLE_BYTES,
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_PREDICTION_SAMPLE,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    NOTEBOOK_PATH,
    README_NAME,
    SAMPLE_NAME,
    bundle_name,
    cap_log,
    deterministic_zip,
    expansion_limit,
    extract_zip,
    file_record,
    find_notebook,
    prediction_sample,
    read_run_config,
    tree_records,
)
from tunix_package.gate import DEFAULT_THRESHOLD, GATE_FILE, format_report, run_gate
from tunix_package.readme import ReadmeFacts, render_readme
from tunix_package.validation import (
    run_directory_problems,
    submission_folder_problems,
    validate_path,
    zip_entry_problems,
)


def _refuse(message: str, problems: list[str]) -> EvidenceError:
    return EvidenceError(message + ":\n  " + "\n  ".join(problems))


def backend_of_run(run: RunDirectory, context: RunContext) -> ModelBackend:
    """The model backend the run's config names (``model.backend``, ``jax`` by default),
    from ``context``'s backends."""
    name = (read_run_config(run.config_path).get("model") or {}).get("backend", "jax")
    try:
        backend: ModelBackend = context.backends.load(str(name))()
    except RegistryError as exc:
        raise EvidenceError(f"{run.config_path}: model.backend: {exc}") from None
    return backend


def link_tree(source: Path, destination: Path) -> None:
    """``destination`` as a tree of hard links to ``source``'s files: the export beside the
    bundle costs no disk (on Kaggle's 20 GB, a second copy of a 2B model is a real limit).
    A file is copied only where the two lie on different file systems. Exports replace
    their folder whole rather than rewrite files, so the links keep the packaged bytes."""
    for path in sorted(source.rglob("*")):
        target = destination / path.relative_to(source)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.copy2(path, target)


def out_dir_problem(run: RunDirectory, out_dir: Path) -> str | None:
    """Why ``out_dir`` may not receive ``run``'s submission, or None. Packaging replaces
    its folder whole, so it must not be the run directory, hold it, or lie inside it
    (the run's ``submission/`` excepted), nor hold files of anything but a submission.
    Symbolic links are resolved first."""
    run_path, target = run.path.resolve(), out_dir.resolve()
    refused = f"{out_dir}: cannot hold the submission, since packaging replaces that folder whole"
    if target == run.submission_dir.resolve():
        pass
    elif target == run_path:
        return f"{refused}, and it is the run directory"
    elif target.is_relative_to(run_path):
        return f"{refused}, and it lies inside the run directory (only {run.submission_dir} may)"
    elif run_path.is_relative_to(target):
        return f"{refused}, and it holds the run directory {run.path}"
    if target.is_dir():
        foreign = sorted(entry.name for entry in target.iterdir()
                         if entry.name not in (MODEL, REPORT) and entry.suffix != ".zip")  # fmt: skip
        if foreign:
            return f"{refused}, and it holds {foreign[0]!r}, no part of a submission"
    elif target.exists():
        return f"{out_dir}: is a file; the submission needs a folder"
    return None


def swap_in(staging: Path, out_dir: Path) -> None:
    """Put the finished folder ``staging`` in the place of ``out_dir`` by renames only: the
    previous folder is whole until the new one is in place, then removed."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    previous = out_dir.with_name(f".{out_dir.name}.package-old")
    shutil.rmtree(previous, ignore_errors=True)
    out_dir.rename(previous)
    staging.rename(out_dir)
    shutil.rmtree(previous)


def _training_facts(run: RunDirectory) -> tuple[int | None, float | None]:
    """Steps trained and the last logged loss, from the manifest and metrics.jsonl."""
    records = read_jsonl(run.metrics_path) if run.metrics_path.is_file() else []
    steps = TrainDetail.read(run.manifest).steps
    if steps is None and records:
        steps = records[-1].get("step")
    return steps, (records[-1].get("loss") if records else None)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def judges_path_threshold(options: Mapping[str, Any]) -> float | None:
    """The judges' path gate's threshold from ``package.options`` (``judges_path``, default
    true, and ``judges_path_threshold``, default 0.9), or None when the gate is off."""
    enabled = options.get("judges_path", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"package.options.judges_path: must be true or false, got {enabled!r}")
    threshold = options.get("judges_path_threshold", DEFAULT_THRESHOLD)
    is_number = isinstance(threshold, int | float) and not isinstance(threshold, bool)
    if not is_number or not 0 <= threshold <= 1:
        raise ConfigError("package.options.judges_path_threshold: must be between 0 and 1, "
                          f"got {threshold!r}")  # fmt: skip
    return float(threshold) if enabled else None


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


class KagglePackager:
    """Builds and validates Kaggle submission bundles.

    Options (``package.options`` plus the runner's ``max_bundle_bytes`` and
    ``prediction_sample``): ``max_log_bytes`` (default: a quarter of the cap, at most
    200 kB), ``notebook`` (a path overriding the lookup of
    ``notebooks/kaggle_submission.ipynb``), ``out_dir`` (instead of ``run/submission``),
    ``include_report`` (``true``: the report goes into the zip as well as beside it),
    ``judges_path`` (default ``true``: run the judges' path gate of :mod:`tunix_package.gate`
    first, whose report goes into the bundle; it says NOT RUN, at no cost, without
    google-tunix) and ``judges_path_threshold`` (its lowest format rate, default 0.9).
    """

    name = "kaggle"

    def package(
        self,
        run: RunDirectory,
        options: Mapping[str, Any],
        *,
        context: RunContext,
        backend: ModelBackend | None = None,
    ) -> Path:
        """See :class:`tunix_core.protocols.Packager`; without ``backend`` (``tunix
        package`` on a finished run), the one the run's config names verifies the model."""
        out_dir = Path(options.get("out_dir") or run.submission_dir)
        include_report = options.get("include_report", False)
        if not isinstance(include_report, bool):
            raise ConfigError("package.options.include_report: must be true or false, "
                              f"got {include_report!r}")  # fmt: skip
        gate_threshold = judges_path_threshold(options)
        refusal = out_dir_problem(run, out_dir)
        if refusal is not None:
            raise ConfigError(refusal)

        problems = run_directory_problems(run.path, context=context, include_submission=False)
        if not run.model_config_path.is_file():
            problems.append(f"{run.model_dir}: no model export (the train stage writes it)")
        for path in (run.summary_path, run.predictions_path, run.metrics_path, run.config_path):
            if not path.is_file():
                problems.append(f"{path}: missing")
        if problems:
            raise _refuse(f"refusing to package {run.path}", problems)
        if gate_threshold is None:
            context.progress("[package] judges' path: off (package.options.judges_path: false); "
                             f"a {GATE_FILE} that `tunix gate` wrote goes into the bundle as it is")  # fmt: skip
        else:  # its report goes into the bundle, whose validation fails it below the threshold
            report = run_gate(run.path, context.host, threshold=gate_threshold,
                              progress=context.progress)  # fmt: skip
            context.progress(f"[package] {format_report(report)}")

        # Built in a new folder beside out_dir and swapped in once it validates, so a
        # failed packaging leaves the previous submission as it was.
        target = out_dir.resolve()
        staging = target.with_name(f".{target.name}.package-tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            bundle = self._build(run, staging, options, context=context, backend=backend)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        swap_in(staging, target)
        return out_dir / bundle.name

    def _build(
        self,
        run: RunDirectory,
        out_dir: Path,
        options: Mapping[str, Any],
        *,
        context: RunContext,
        backend: ModelBackend | None,
    ) -> Path:
        """Write the bundle, the model export and the report into the new folder
        ``out_dir`` and validate them there."""
        cap = int(options.get("max_bundle_bytes", DEFAULT_MAX_BUNDLE_BYTES))
        sample_size = int(options.get("prediction_sample", DEFAULT_PREDICTION_SAMPLE))
        max_log = int(options.get("max_log_bytes", min(DEFAULT_MAX_LOG_BYTES, cap // 4)))
        include_report = options.get("include_report", False)
        model_copy = out_dir / MODEL
        link_tree(run.model_dir, model_copy)
        round_trip = (backend or backend_of_run(run, context)).verify(
            model_copy, progress=context.progress
        )
        if not round_trip["ok"]:
            raise EvidenceError(
                f"{model_copy}: the exported model does not load back to the same outputs: "
                f"{json.dumps(round_trip, sort_keys=True)}"
            )

        entries: dict[str, bytes] = {
            MANIFEST: _json_bytes(run.manifest),
            EVAL_SUMMARY: run.summary_path.read_bytes(),
            METRICS: run.metrics_path.read_bytes(),
            CONFIG: run.config_path.read_bytes(),
            MODEL_CONFIG: (model_copy / MODEL_CONFIG).read_bytes(),
        }
        baseline = run.baseline_summary_path
        if baseline.is_file():
            entries[BASELINE_SUMMARY] = baseline.read_bytes()
        if (run.path / GATE_FILE).is_file():  # `tunix gate RUN`'s report, checked by validation
            entries[GATE_FILE] = (run.path / GATE_FILE).read_bytes()
        for plot in sorted(run.path.glob("*.png")):  # the trainer's loss curve and friends
            entries[plot.name] = plot.read_bytes()
        # Rendered before the zip so that the copy in it and the one beside it are one page.
        report = render_html(gather(run.path))
        if include_report:
            entries[REPORT] = report.encode("utf-8")
        sample, prediction_count = prediction_sample(run.predictions_path, sample_size)
        entries[SAMPLE_NAME] = sample
        full_log = run.log_path.read_bytes() if run.log_path.is_file() else b""
        entries[LOG], log_truncated = cap_log(full_log, max_log)
        notebook, notebook_note = find_notebook(run, options.get("notebook"))
        if notebook is not None:
            entries[NOTEBOOK_PATH] = notebook

        model_config = _read_json(model_copy / MODEL_CONFIG)
        steps, final_loss = _training_facts(run)
        entries[README_NAME] = render_readme(
            ReadmeFacts(
                manifest=run.manifest,
                model_config=model_config,
                summary=_read_json(run.summary_path),
                baseline_summary=_read_json(baseline) if baseline.is_file() else None,
                steps=steps,
                final_loss=final_loss,
                round_trip=round_trip,
                notebook_included=notebook is not None,
                notebook_note=notebook_note,
                log_truncated=log_truncated,
                log_bytes=len(full_log),
                sample_count=min(sample_size, prediction_count),
                prediction_count=prediction_count,
                entries={name: len(data) for name, data in entries.items()},
            )
        ).encode("utf-8")
        entries[MANIFEST_NAME] = _json_bytes(
            {
                "format": MANIFEST_FORMAT,
                "version": MANIFEST_VERSION,
                "run_id": run.run_id,
                "model_id": run.manifest["model_id"],
                "model_fingerprint": run.manifest.get("model_fingerprint"),
                "max_bundle_bytes": cap,
                "files": {name: file_record(data) for name, data in sorted(entries.items())},
                "model": {
                    "directory": MODEL,
                    "files": tree_records(model_copy),
                    "round_trip": round_trip,
                },
                "notebook": {"included": notebook is not None, "source": notebook_note},
                "log": {"bytes": len(full_log), "truncated": log_truncated},
                "predictions": {
                    "total": prediction_count,
                    "sampled": min(sample_size, prediction_count),
                },
            }
        )

        data = deterministic_zip(entries)
        if len(data) > cap:
            largest = sorted(entries.items(), key=lambda item: -len(item[1]))[:3]
            listing = ", ".join(f"{name} ({len(content):,} bytes)" for name, content in largest)
            raise EvidenceError(
                f"the bundle for {run.path} would be {len(data):,} bytes, over the cap of "
                f"{cap:,} (package.max_bundle_bytes); largest entries: {listing}"
            )
        bundle = out_dir / bundle_name(run)
        staging = bundle.with_name(f".{bundle.name}.tmp")
        staging.write_bytes(data)
        os.replace(staging, bundle)

        write_text_atomic(out_dir / REPORT, report)
        problems = submission_folder_problems(out_dir, context=context)
        if problems:
            raise _refuse(f"the bundle {bundle} failed validation", problems)
        return bundle

    def validate(self, path: Path, *, context: RunContext, deep: bool = False) -> list[str]:
        return validate_path(Path(path), context=context, deep=deep)


def evidence_dir_problem(run: RunDirectory, out_dir: Path, destination: Path) -> str | None:
    """Why ``destination`` may not receive the evidence of ``run``'s bundle in ``out_dir``,
    or None: it must be a new or empty folder outside both (symbolic links resolved)."""
    target = destination.resolve()
    for holder in (run.path, out_dir):
        if target.is_relative_to(holder.resolve()):
            return (f"{destination}: lies inside {holder}; export the evidence to a folder of "
                    "its own, e.g. submission_runs/NAME")  # fmt: skip
    if destination.exists() and any(destination.iterdir()):
        return f"{destination} already exists and is not empty; remove it first"
    return None


def export_evidence(bundle: Path, destination: Path) -> list[Path]:
    """Extract the bundle's files (the evidence, not the model) into ``destination``,
    which must not exist or be empty. Returns the files written."""
    problems = zip_entry_problems(bundle)
    if problems:
        raise _refuse(f"refusing to export from {bundle}", problems)
    if destination.exists() and any(destination.iterdir()):
        raise EvidenceError(f"{destination} already exists and is not empty; remove it first")
    with zipfile.ZipFile(bundle) as archive:
        return extract_zip(archive, destination, expansion_limit(bundle.stat().st_size))
