import copy
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from tunix_core.errors import EvidenceError, TunixError
from tunix_core.evidence import (
    MANIFEST_SCHEMA,
    load_schema,
    schema_errors,
    validate_file,
    validate_tree,
)
from tunix_core.jsonio import append_jsonl, read_jsonl, write_json_atomic
from tunix_core.rundir import RunDirectory
from tunix_core.types import (
    STAGE_DETAILS,
    STAGE_NAMES,
    BaselineDetail,
    DatasetDetail,
    EvaluateDetail,
    PackageDetail,
    TrainDetail,
)


def make_run(tmp_path: Path) -> RunDirectory:
    return RunDirectory.create(
        tmp_path / "runs",
        "demo-20261125-120000",
        model_id="gemma3-270m@default",
        dataset="dev-reasoning-v2",
        trainer="jax",
        config_path=None,
        command=["tunix", "run"],
    )


def test_created_manifest_is_valid_and_complete(tmp_path):
    run = make_run(tmp_path)
    manifest = json.loads((run.path / "run_manifest.json").read_text())
    assert schema_errors(manifest, "run_manifest") == []
    assert manifest["environment"]["packages"]["tunix-core"]
    assert set(manifest["stages"]) == set(STAGE_NAMES)
    assert validate_tree(run.path) == ([run.path / "run_manifest.json"], [])


def test_stage_timings_accumulate_across_resumes(tmp_path):
    run = make_run(tmp_path)
    run.start_stage("dataset")
    run.finish_stage("dataset", 1.5, detail={"train_items": 3})
    reopened = RunDirectory.open(run.path)
    reopened.start_stage("train")
    reopened.finish_stage("train", 2.0, status="failed")
    reopened.start_stage("train")
    reopened.finish_stage("train", 3.0)
    again = RunDirectory.open(run.path)
    assert again.manifest["stages"]["dataset"]["detail"] == {"train_items": 3}
    assert again.manifest["stages"]["train"]["seconds"] == 5.0
    assert again.stage_status("train") == "done"


def test_existing_run_directory_is_never_reused(tmp_path):
    make_run(tmp_path)
    with pytest.raises(TunixError, match="already exists; use --resume"):
        make_run(tmp_path)


@pytest.fixture
def good_manifest(tmp_path):
    return json.loads((make_run(tmp_path).path / "run_manifest.json").read_text())


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda m: m.pop("model_id"), "'model_id' is a required property"),
        (lambda m: m.update(status="done"), "status: 'done' is not one of"),
        (lambda m: m.update(commit_sha="not-a-sha"), "commit_sha: 'not-a-sha' does not match"),
        (lambda m: m.update(timestamp="yesterday"), "timestamp: 'yesterday' is not a 'date-time'"),
        (lambda m: m.update(extra=1), "Additional properties are not allowed ('extra'"),
        (lambda m: m["environment"].pop("accelerator"), "'accelerator' is a required property"),
        (lambda m: m["environment"].update(device_count=-1), "device_count: -1 is less than"),
        (lambda m: m["stages"].update(deploy={"status": "done"}), "'deploy' does not match any"),
        (lambda m: m["stages"]["train"].update(seconds=-3), "stages.train.seconds: -3 is less"),
        (lambda m: m.update(run_version=2), "run_version: 1 was expected"),
        (lambda m: m.update(command=[]), "command: [] should be non-empty"),
        (lambda m: m["model_choices"].update(x={"value": "a"}), "'reason' is a required property"),
    ],
)
def test_each_kind_of_bad_manifest_is_refused(good_manifest, mutate, expected):
    manifest = copy.deepcopy(good_manifest)
    mutate(manifest)
    errors = schema_errors(manifest, "run_manifest")
    assert any(expected in e for e in errors), errors


def test_a_manifest_from_before_model_choices_still_opens(tmp_path):
    run = make_run(tmp_path)
    older = {k: v for k, v in run.manifest.items() if k != "model_choices"}
    write_json_atomic(run.manifest_path, older)
    assert "model_choices" not in RunDirectory.open(run.path).manifest


def test_invalid_manifest_is_never_written(tmp_path):
    run = make_run(tmp_path)
    before = (run.path / "run_manifest.json").read_text()
    run.manifest["status"] = "sort of"
    with pytest.raises(EvidenceError, match=r"refusing to write an invalid run_manifest\.json"):
        run.save()
    assert (run.path / "run_manifest.json").read_text() == before


def test_open_refuses_a_hand_edited_manifest(tmp_path):
    run = make_run(tmp_path)
    manifest = json.loads((run.path / "run_manifest.json").read_text())
    manifest["model_id"] = ""
    write_json_atomic(run.path / "run_manifest.json", manifest)
    with pytest.raises(EvidenceError, match="model_id"):
        RunDirectory.open(run.path)


def test_metrics_lines_are_validated_with_their_line_number(tmp_path):
    path = tmp_path / "metrics.jsonl"
    append_jsonl(path, [{"step": 1, "loss": 2.0, "learning_rate": 1e-4, "elapsed_seconds": 1.0}])
    append_jsonl(path, [{"step": 0, "loss": "low", "learning_rate": 1e-4, "elapsed_seconds": 1.0}])
    problems = validate_file(path)
    assert any(p.startswith(f"{path}:2: loss") for p in problems)
    assert any(p.startswith(f"{path}:2: step") for p in problems)
    assert not any(f"{path}:1:" in p for p in problems)


def test_torn_last_jsonl_line_is_dropped_but_a_torn_middle_line_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2')
    assert read_jsonl(path) == [{"step": 1}]
    path.write_text('{"step": 1\n{"step": 2}\n')
    with pytest.raises(ValueError, match=":1: invalid JSON"):
        read_jsonl(path)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"b": 1})
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    assert json.loads((tmp_path / "a.json").read_text()) == {"b": 1}


def test_the_manifest_schema_takes_its_stage_names_from_the_constants():
    # The file spells no stage name; loading fills them in from STAGE_NAMES.
    raw = json.loads(resources.files("tunix_core").joinpath(
        "schemas", f"{MANIFEST_SCHEMA}.schema.json").read_text())  # fmt: skip
    assert raw["properties"]["stages"]["patternProperties"] == {}
    pattern = re.compile(next(iter(
        load_schema(MANIFEST_SCHEMA)["properties"]["stages"]["patternProperties"])))  # fmt: skip
    assert [name for name in STAGE_NAMES if pattern.fullmatch(name)] == list(STAGE_NAMES)
    assert not any(pattern.fullmatch(name) for name in ("deploy", "train2", "dataset|train", ""))


@pytest.mark.parametrize("detail", [
    DatasetDetail(train_items=4, eval_items=2, eval_sha256="ab" * 32),
    DatasetDetail(train_items=4, eval_items=2, eval_sha256="ab" * 32,
                  parts={"train": [{"name": "a", "items": 4}]}),
    BaselineDetail(skipped=True), BaselineDetail(primary_score=0.25),
    TrainDetail(steps=3, stopped_early=False, reason=""),
    TrainDetail(steps=3, stopped_early=True, reason="time budget", phases=[{"phase": 1}],
                init_from={"run": "runs/a", "model_fingerprint": None}),
    EvaluateDetail(primary_score=0.5), PackageDetail(bundle="b.zip"), PackageDetail(skipped=True),
])  # fmt: skip
def test_each_stage_detail_round_trips_through_the_manifest(tmp_path, detail):
    run = make_run(tmp_path)
    run.finish_stage(detail.stage, 1.0, detail=detail.to_dict())
    again = RunDirectory.open(run.path)
    assert STAGE_DETAILS[detail.stage].read(again.manifest) == detail


def test_stage_details_keep_the_manifest_keys():
    assert TrainDetail(steps=3, stopped_early=False, reason="").to_dict() == {
        "steps": 3, "stopped_early": False, "reason": ""}  # fmt: skip
    assert BaselineDetail(skipped=True).to_dict() == {"skipped": True}
    assert list(DatasetDetail(train_items=1, eval_items=1, eval_sha256="x").to_dict()) == [
        "train_items", "eval_items", "eval_sha256"]  # fmt: skip
    assert TrainDetail.read({"stages": {"train": {"status": "pending"}}}).steps is None
