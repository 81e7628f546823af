from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner, Result

from tunix_core.data.parse import parse_completion
from tunix_core.data.record import read_jsonl
from tunix_core.errors import ConfigError, DataError
from tunix_datasets.cli import datasets, manifest_path_for
from tunix_datasets.providers.dev_reasoning import GENERATOR_VERSION


def _run(host: SimpleNamespace, *args: str) -> Result:
    return CliRunner().invoke(datasets, list(args), obj=host, catch_exceptions=True)


def test_list_shows_names_and_descriptions(host: SimpleNamespace) -> None:
    result = _run(host, "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == [
        "champ",
        "dev-reasoning-v2",
        "dev-reasoning-v3",
        "golden-v2",
        "gsm-symbolic",
        "hf",
        "humaneval",
        "jsonl",
        "judging-mix",
        "reasoning-gym",
    ]
    assert "Seeded worked problems" in result.output


def test_show_prints_questions_steps_and_answers(host: SimpleNamespace) -> None:
    result = _run(host, "show", "golden-v2", "--limit", "2")
    assert result.exit_code == 0, result.output
    assert "[1/2] golden-add-00  golden_add · core · easy" in result.output
    assert "  Q: What is 9 + 2?\n  1. 9 + 2 = 11\n  A: 11\n" in result.output
    assert "[2/2]" in result.output and "[3/" not in result.output


def test_show_rendered_prints_the_chat_turns(host: SimpleNamespace) -> None:
    result = _run(
        host, "show", "golden-v2", "--limit", "1", "--rendered", "--system-prompt", "Be brief."
    )
    assert result.exit_code == 0, result.output
    assert (
        "<start_of_turn>user\nBe brief.\n\nWhat is 9 + 2?<end_of_turn>\n<start_of_turn>model\n"
        in result.output
    )
    assert "<reasoning>9 + 2 = 11</reasoning><answer>11</answer><end_of_turn>" in result.output


def test_show_passes_dataset_options(host: SimpleNamespace, tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text(
        "".join(json.dumps({"q": f"Q{i}?", "a": str(i), "s": "x"}) + "\n" for i in range(10))
    )
    result = _run(host, "show", f"jsonl:{path}", "--split", "eval", "--set", "eval_fraction=0.2",
                  "--set", "columns.question=q", "--set", "columns.answer=a", "--set", "columns.steps=s")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.count("  Q: Q") == 2


def test_show_errors_are_data_and_config_errors(host: SimpleNamespace) -> None:
    bad_split = _run(host, "show", "dev-reasoning-v2", "--split", "test")
    assert isinstance(bad_split.exception, DataError)
    assert "available: train, eval" in str(bad_split.exception)
    bad_option = _run(host, "show", "dev-reasoning-v2", "--set", "size=3")
    assert isinstance(bad_option.exception, ConfigError)


def test_export_jsonl_is_byte_identical_and_has_a_manifest(
    host: SimpleNamespace, tmp_path: Path
) -> None:
    first, second = tmp_path / "a" / "eval.jsonl", tmp_path / "b" / "eval.jsonl"
    for out in (first, second):
        result = _run(host, "export", "dev-reasoning-v2", "--split", "eval", "--out", str(out))
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes()
    assert manifest_path_for(first).read_bytes() == manifest_path_for(second).read_bytes()
    manifest = json.loads(manifest_path_for(first).read_text())
    assert manifest["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert manifest["bytes"] == first.stat().st_size
    assert (manifest["count"], manifest["seed"], manifest["generator_version"]) == (
        200,
        0,
        GENERATOR_VERSION,
    )
    assert manifest["counts"]["split"] == {"eval": 200}
    assert sum(manifest["counts"]["category"].values()) == 200
    assert manifest["counts"]["section"] == {"core": 128, "edge_case": 24, "trace_sensitive": 48}
    assert len(read_jsonl(first)) == 200


def test_export_seed_changes_the_file(host: SimpleNamespace, tmp_path: Path) -> None:
    for seed in ("0", "1"):
        _run(host, "export", "dev-reasoning-v2", "--split", "train", "--seed", seed, "--limit", "50",
             "--out", str(tmp_path / f"s{seed}.jsonl"))  # fmt: skip
    assert (tmp_path / "s0.jsonl").read_bytes() != (tmp_path / "s1.jsonl").read_bytes()
    assert len(read_jsonl(tmp_path / "s0.jsonl")) == 50


def test_export_rendered(host: SimpleNamespace, tmp_path: Path) -> None:
    out = tmp_path / "golden.rendered.jsonl"
    result = _run(
        host, "export", "golden-v2", "--split", "eval", "--format", "rendered", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 100
    assert set(rows[0]) == {"id", "prompt", "completion"}
    assert all(r["prompt"].endswith("<start_of_turn>model\n") for r in rows)
    assert all(parse_completion(r["completion"]).format_exact for r in rows)
    manifest = json.loads(manifest_path_for(out).read_text())
    assert manifest["format"] == "rendered" and manifest["system_prompt"]


@pytest.mark.parametrize("missing", [["--split", "eval"], ["--out", "x.jsonl"]])
def test_export_requires_split_and_out(host: SimpleNamespace, missing: list[str]) -> None:
    result = _run(host, "export", "golden-v2", *missing)
    assert result.exit_code == 2
    assert "Missing option" in result.output
