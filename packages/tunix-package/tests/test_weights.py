"""Weights that changed after export, and submissions written where they would destroy a
run: refused with a line naming the file, and nothing already written lost."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import tunix_eval.plugin
import tunix_jax.plugin
from tunix_core import builtin
from tunix_core.cli import cli
from tunix_core.command_group import TunixGroup
from tunix_core.plugins import PluginHost
from tunix_package import plugin


@pytest.fixture
def tunix():
    """``tunix ARGS`` with the core, the kaggle packager, the jax backend (and its
    ``export`` command) and tunix-eval's evaluators, through the real Click host."""
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(plugin, "kaggle", "tunix-package")
    host.add_plugin(tunix_jax.plugin, "jax", "tunix-jax")
    host.add_plugin(tunix_eval.plugin, "eval", "tunix-eval")
    host.fill_registries()
    group = TunixGroup("tunix", commands=dict(cli.commands))
    host.register_commands(group)
    return lambda *args: CliRunner().invoke(group, [str(a) for a in args], obj=host)


def replace_file(path: Path, data: bytes) -> None:
    """Give ``path`` new bytes in a new file, as ``sed -i`` or an editor does: the hard
    links of an earlier submission keep the old ones."""
    staging = path.with_name(path.name + ".new")
    staging.write_bytes(data)
    os.replace(staging, path)


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    replace_file(path, bytes(data))


def largest_file(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def file_digests(folder: Path, skip: frozenset[str] = frozenset()) -> dict:
    """What an export records of its files: ``path -> {sha256, bytes}``."""
    return {
        path.relative_to(folder).as_posix(): {
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "bytes": path.stat().st_size,
        }
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() not in skip
    }


def model_state(folder: Path) -> dict:
    return file_digests(folder)


def test_a_flipped_byte_in_the_params_fails_validate_and_package(make_run, tunix):
    run = make_run()
    assert tunix("package", "--run", run.path).exit_code == 0
    submission = model_state(run.submission_dir)
    weights = largest_file(run.model_dir / "params")
    flip_one_byte(weights)

    checked = tunix("validate", run.path)
    assert checked.exit_code == 1
    assert (f"{weights}: sha256 differs from {run.model_dir / 'model_config.json'} "
            "file_digests (changed after the export)") in checked.output  # fmt: skip
    packaged = tunix("package", "--run", run.path)
    assert packaged.exit_code == 1 and f"{weights}: sha256 differs" in packaged.output
    # The earlier submission is as it was, and still validates.
    assert model_state(run.submission_dir) == submission
    checked = tunix("validate", run.submission_dir)
    assert checked.exit_code == 0, checked.output


def test_a_file_added_to_the_model_is_refused_and_not_blessed_by_the_manifest(make_run, tunix):
    run = make_run()
    extra = run.model_dir / "hf" / "model.safetensors"
    extra.parent.mkdir()
    extra.write_bytes(b"\0" * 64)
    checked = tunix("validate", run.path)
    assert checked.exit_code == 1
    assert f"{extra}: not recorded in" in checked.output
    packaged = tunix("package", "--run", run.path)
    assert packaged.exit_code == 1 and f"{extra}: not recorded in" in packaged.output
    assert not run.submission_dir.exists()


def test_a_forged_probe_passes_the_fast_check_but_not_deep_nor_package(make_run, tunix):
    """Weights whose recorded digests were rewritten to match: only re-running the probe
    tells. Packaging fails in its new folder; the earlier submission stays whole."""
    run = make_run()
    assert tunix("package", "--run", run.path).exit_code == 0
    submission = model_state(run.submission_dir)
    (bundle,) = run.submission_dir.glob("*.zip")
    bundle_bytes = bundle.read_bytes()

    probe_path = run.model_dir / "probe.json"
    probe = json.loads(probe_path.read_text())
    probe["logits"] = [value + 0.5 for value in probe["logits"]]
    replace_file(probe_path, json.dumps(probe).encode())
    config_path = run.model_dir / "model_config.json"
    meta = json.loads(config_path.read_text())
    meta["file_digests"] = file_digests(run.model_dir, skip=frozenset({"model_config.json"}))
    replace_file(config_path, json.dumps(meta).encode())

    fast = tunix("validate", run.path)
    assert fast.exit_code == 0, fast.output  # the files match their (forged) record
    deep = tunix("validate", run.path, "--deep")
    assert deep.exit_code == 1
    assert (
        f"{run.model_dir}: re-running the probe does not give the recorded outputs" in deep.output
    )

    packaged = tunix("package", "--run", run.path)
    assert packaged.exit_code == 1
    assert "does not load back to the same outputs" in packaged.output
    assert model_state(run.submission_dir) == submission
    assert bundle.read_bytes() == bundle_bytes
    assert not list(run.path.glob(".submission*"))  # the new folder is gone
    checked = tunix("validate", run.submission_dir, "--deep")
    assert checked.exit_code == 0, checked.output


def test_a_tensor_changed_in_an_hf_export_fails_validate(make_run, tunix):
    from safetensors.numpy import load_file, save_file

    run = make_run()
    assert tunix("export", run.path, "--format", "hf").exit_code == 0
    export = run.path / "exports" / "hf"
    assert tunix("validate", run.path).exit_code == 0

    weights = export / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name][...] = 1e30
    save_file(tensors, weights, metadata={"format": "pt"})
    for target in (run.path, export):
        checked = tunix("validate", target)
        assert checked.exit_code == 1
        assert f"{weights}: sha256 differs from {run.path / 'exports' / 'hf.export.json'}" in (
            checked.output
        )

    record = json.loads((run.path / "exports" / "hf.export.json").read_text())
    assert record["format"] == "hf" and set(record["files"]) == {
        p.name for p in export.iterdir()
    }  # fmt: skip
    (run.path / "exports" / "hf.export.json").unlink()
    checked = tunix("validate", run.path)
    assert checked.exit_code == 1
    assert f"{export}: has no .export.json record beside it" in checked.output


def test_export_refuses_to_write_into_the_model_or_the_submission(make_run, tunix, tmp_path):
    run = make_run()
    before = model_state(run.model_dir), sorted(run.path.iterdir())
    link = tmp_path / "link-to-model"
    link.symlink_to(run.model_dir)
    for out in (run.model_dir / "hf", run.submission_dir / "hf", link / "hf", run.path / "hf"):
        result = tunix("export", run.path, "--format", "hf", "--out", out)
        assert result.exit_code == 2
        assert f"{out} lies inside the run directory {run.path}" in result.output
    assert (model_state(run.model_dir), sorted(run.path.iterdir())) == before


def test_package_refuses_an_out_that_is_the_run_or_inside_or_above_it(make_run, tunix, tmp_path):
    run = make_run()
    before = model_state(run.model_dir), sorted(run.path.iterdir())
    link = tmp_path / "link-to-run"
    link.symlink_to(run.path)
    cases = {
        run.path: "and it is the run directory",
        link: "and it is the run directory",
        run.model_dir: "and it lies inside the run directory",
        run.path / "elsewhere": "and it lies inside the run directory",
        run.path.parent: f"and it holds the run directory {run.path}",
    }
    for out, reason in cases.items():
        result = tunix("package", "--run", run.path, "--out", out)
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert result.output.startswith(f"Error: {out}: cannot hold the submission, since "
                                        f"packaging replaces that folder whole, {reason}")  # fmt: skip
    assert (model_state(run.model_dir), sorted(run.path.iterdir())) == before
    assert sorted(p.name for p in run.path.parent.iterdir()) == [run.path.name]

    foreign = tmp_path / "desktop"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    result = tunix("package", "--run", run.path, "--out", foreign)
    assert (
        result.exit_code == 2 and "it holds 'notes.txt', no part of a submission" in result.output
    )
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_export_evidence_inside_the_run_is_refused_before_packaging(make_run, tunix):
    run = make_run()
    for evidence in (run.path / "evidence", run.submission_dir / "evidence"):
        result = tunix("package", "--run", run.path, "--export-evidence", evidence)
        assert result.exit_code == 2
        assert "export the evidence to a folder of its own" in result.output
        assert not evidence.exists() and not run.submission_dir.exists()


def test_repackaging_replaces_the_submission_whole(make_run, tunix):
    run = make_run()
    assert tunix("package", "--run", run.path).exit_code == 0
    (run.submission_dir / "old_2020_abc.zip").write_bytes(b"a bundle of another name")
    assert tunix("validate", run.submission_dir).exit_code == 1
    assert tunix("package", "--run", run.path).exit_code == 0
    assert not (run.submission_dir / "old_2020_abc.zip").exists()
    assert sorted(p.name for p in run.path.iterdir() if p.name.startswith(".submission")) == []
    assert tunix("validate", run.path).exit_code == 0
