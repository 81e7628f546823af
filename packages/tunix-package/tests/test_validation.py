"""Every refusal: evidence that lies, is incomplete, too large, or reaches outside its folder."""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

import pytest
import yaml

from tunix_core.errors import EvidenceError
from tunix_core.jsonio import read_jsonl
from tunix_core.plugins import get_host
from tunix_core.protocols import RunContext
from tunix_package.kaggle import KagglePackager, export_evidence


def rewrite_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def refused(run, options, expected: str) -> None:
    """Packaging refuses with ``expected`` and validation reports it."""
    with pytest.raises(EvidenceError, match="refusing to package") as caught:
        KagglePackager().package(run, options, context=RunContext(get_host()))
    assert expected in str(caught.value)
    assert any(expected in problem for problem in KagglePackager().validate(run.path, context=RunContext(get_host())))


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (None, "eval_summary.json: primary_score is null; a submission needs a measured score"),
        (float("nan"), "eval_summary.json: primary_score is NaN, not a measured number"),
        ("TBD", "eval_summary.json: primary_score is the placeholder 'TBD'"),
        ("N/A", "eval_summary.json: primary_score is the placeholder 'N/A'"),
        (1.5, "eval_summary.json: primary_score 1.5 is outside [0, 1]"),
        (True, "eval_summary.json: primary_score must be a number in [0, 1], got True"),
    ],
)
def test_a_missing_or_placeholder_score_is_refused(make_run, options, score, expected):
    run = make_run()
    rewrite_json(run.path / "eval_summary.json", primary_score=score)
    refused(run, options, expected)


def test_a_score_that_disagrees_with_its_counts_is_refused(make_run, options):
    run = make_run()
    rewrite_json(run.path / "eval_summary.json", primary_score=0.9)
    refused(run, options, "primary_score 0.9 disagrees with its own counts (4 correct of 6 items")


def test_a_summary_that_disagrees_with_its_predictions_is_refused(make_run, options):
    run = make_run()
    predictions = run.path / "predictions.jsonl"
    records = read_jsonl(predictions)
    records[-1]["correct"] = True  # now 5 of 6 are correct, the summary still says 4
    predictions.write_text("".join(json.dumps(r) + "\n" for r in records))
    refused(run, options, "counts.correct is 4 but")
    problems = KagglePackager().validate(run.path, context=RunContext(get_host()))
    assert any("primary_score 0.6666666666666666 disagrees with" in p and
               "where 5 of 6 predictions are correct" in p for p in problems)  # fmt: skip


def test_a_model_id_that_is_not_the_trained_weights_is_refused(make_run, options):
    run = make_run()
    run.manifest["model_id"] = "gemma3-270m@default"  # the label of another model
    run.save()
    refused(run, options, "run_manifest.json: model_id is 'gemma3-270m@default' but")
    refused(run, options, "says the exported weights are 'tiny-gemma3@random'")


def test_a_wrong_or_missing_fingerprint_is_refused(make_run, options):
    run = make_run()
    run.manifest["model_fingerprint"] = "sha256:" + "0" * 64
    run.save()
    refused(run, options, "model_fingerprint 'sha256:000")
    run.manifest["model_fingerprint"] = None
    run.save()
    refused(run, options, "model_fingerprint is null, but the exported weights have fingerprint")


def test_weights_whose_shapes_are_not_the_presets_are_refused(make_run, options):
    from tunix_jax.models.gemma.config import get_config

    run = make_run()
    # Relabel the tiny Gemma 3 weights as the tiny Gemma 2 preset, consistently everywhere.
    config_path = run.model_dir / "model_config.json"
    rewrite_json(config_path, preset="tiny-gemma2", family="gemma2",
                 config=get_config("tiny-gemma2").to_dict())  # fmt: skip
    run.manifest["model_id"] = "tiny-gemma2@random"
    run.save()
    refused(
        run,
        options,
        "params: tensor 'transformer/layer_4/attn/q_einsum/w' is not part of model preset "
        "'tiny-gemma2'",
    )
    refused(
        run,
        options,
        "params: tensor 'transformer/layer_0/mlp/gating_einsum/w' has shape (2, 128, 64), but "
        "model preset 'tiny-gemma2' expects (2, 64, 128)",
    )


def test_params_in_the_module_layout_are_refused(make_run, options):
    import shutil

    from tunix_jax.weights.loading import load_model, model_params
    from tunix_jax.weights.orbax_io import save_params

    run = make_run()
    shutil.rmtree(run.model_dir / "params")
    model, _ = load_model("tiny-gemma3", "random")
    save_params(model_params(model), run.model_dir / "params")
    refused(run, options, "params: parameters in the module layout (an older export)")


def test_a_model_config_that_misstates_the_preset_is_refused(make_run, options):
    run = make_run()
    config_path = run.model_dir / "model_config.json"
    data = json.loads(config_path.read_text())
    data["config"]["num_layers"] = 26
    config_path.write_text(json.dumps(data))
    refused(
        run, options, "model_config.json: config.num_layers is 26 but preset 'tiny-gemma3' has 6"
    )


def test_outputs_of_finished_stages_must_exist(make_run, options):
    run = make_run()
    run.metrics_path.unlink()
    refused(run, options, "metrics.jsonl: missing, though the train stage is done")
    (run.baseline_dir / "eval_summary.json").unlink()
    refused(run, options, "baseline/eval_summary.json: missing, though the baseline stage is done")


def test_symlinks_in_a_run_are_refused(make_run, options, tmp_path):
    run = make_run()
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (run.model_dir / "extra.bin").symlink_to(outside)
    refused(run, options, "model/extra.bin: is a symbolic link")


def test_a_probe_changed_after_export_is_refused(make_run, options):
    run = make_run()
    probe_path = run.model_dir / "probe.json"
    probe = json.loads(probe_path.read_text())
    probe["logits"] = [value + 0.5 for value in probe["logits"]]
    probe_path.write_text(json.dumps(probe))
    refused(run, options, f"{probe_path}: ")
    refused(run, options, "(changed after the export)")
    assert not run.submission_dir.exists()


def test_an_edited_evidence_file_is_caught_by_its_checksum(make_run, options, tmp_path):
    run = make_run()
    bundle = KagglePackager().package(run, options, context=RunContext(get_host()))
    evidence = tmp_path / "evidence"
    export_evidence(bundle, evidence)
    (evidence / "README_SUBMISSION.md").write_text("# hand-written claims\n")
    (evidence / "metrics.jsonl").unlink()
    (evidence / "notes.txt").write_text("not from the run")
    problems = KagglePackager().validate(evidence, context=RunContext(get_host()))
    assert (
        f"{evidence / 'README_SUBMISSION.md'}: sha256/size do not match MANIFEST (file changed after packaging)"
        in problems
    )
    assert f"{evidence / 'metrics.jsonl'}: missing from the bundle" in problems
    assert f"{evidence / 'metrics.jsonl'}: listed in MANIFEST but missing" in problems
    assert f"{evidence / 'notes.txt'}: present but not listed in MANIFEST" in problems


def test_a_changed_model_beside_the_zip_is_refused(make_run, options):
    run = make_run()
    KagglePackager().package(run, options, context=RunContext(get_host()))
    (run.submission_dir / "model" / "tokenizer.model").write_bytes(b"another vocabulary")
    problems = KagglePackager().validate(run.submission_dir, context=RunContext(get_host()))
    assert any("model/tokenizer.model: not listed or changed relative to" in p for p in problems)
    assert any(
        "model/tokenizer.model: not listed or changed" in p
        for p in KagglePackager().validate(run.path, context=RunContext(get_host()))
    )


def test_safetensors_or_gguf_in_a_submission_break_the_competitions_file_rules(make_run, options):
    run = make_run()
    KagglePackager().package(run, options, context=RunContext(get_host()))
    submission = run.submission_dir
    assert KagglePackager().validate(submission, context=RunContext(get_host())) == []
    (submission / "model" / "model.safetensors").write_bytes(b"weights")
    (submission / "gemma.GGUF").write_bytes(b"weights")
    problems = KagglePackager().validate(submission, context=RunContext(get_host()))
    rule = ("file in the submission; the competition takes only the Orbax params/, the "
            "tokenizer and the evidence")  # fmt: skip
    assert f"{submission / 'model/model.safetensors'}: a safetensors {rule}" in " ".join(problems)
    assert f"{submission / 'gemma.GGUF'}: a gguf {rule}" in " ".join(problems)


def test_a_zip_over_its_cap_is_refused(make_run, options):
    run = make_run()
    config = yaml.safe_load(run.config_path.read_text())
    config["package"]["max_bundle_bytes"] = 3_000
    run.config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(EvidenceError, match=r"bytes is over the bundle cap of 3000 bytes"):
        KagglePackager().package(run, options, context=RunContext(get_host()))


def malicious_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(zipfile.ZipInfo("run_manifest.json"), "{}")
        archive.writestr(zipfile.ZipInfo("../escaped.txt"), "outside")
        archive.writestr(zipfile.ZipInfo("notes/../../up.txt"), "outside")
        archive.writestr(zipfile.ZipInfo("/etc/cron.d/job"), "absolute")
        archive.writestr(zipfile.ZipInfo("C:\\Windows\\x.txt"), "absolute")
        link = zipfile.ZipInfo("eval_summary.json")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr(zipfile.ZipInfo("run_manifest.json"), "{}")
    return path


def test_zip_entries_that_escape_or_link_are_refused(tmp_path):
    bundle = malicious_zip(tmp_path / "evil.zip")
    problems = KagglePackager().validate(bundle, context=RunContext(get_host()))
    assert f"{bundle}: entry '../escaped.txt' escapes the bundle with '..'" in problems
    assert f"{bundle}: entry 'notes/../../up.txt' escapes the bundle with '..'" in problems
    assert f"{bundle}: entry '/etc/cron.d/job' is an absolute path" in problems
    assert f"{bundle}: entry 'C:\\\\Windows\\\\x.txt' is an absolute path" in problems
    assert f"{bundle}: entry 'eval_summary.json' is a symbolic link" in problems
    assert f"{bundle}: entry 'run_manifest.json' appears more than once" in problems
    with pytest.raises(EvidenceError, match="refusing to export"):
        export_evidence(bundle, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    fake = tmp_path / "bundle.zip"
    fake.write_text("not a zip")
    assert KagglePackager().validate(fake, context=RunContext(get_host()))[0].startswith(f"{fake}: not a readable zip")


def test_a_zip_that_would_expand_enormously_is_not_extracted(tmp_path):
    bomb = tmp_path / "bomb.zip"
    block = b"\0" * (1 << 20)
    with (
        zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("run.log", "w", force_zip64=True) as handle,
    ):
        for _ in range(300):
            handle.write(block)
    problems = KagglePackager().validate(bomb, context=RunContext(get_host()))
    assert problems == [f"{bomb}: its entries would expand to 314,572,800 bytes "
                        "(more than 16,777,216); not a tunix bundle"]  # fmt: skip
