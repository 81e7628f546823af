"""The sha256 and size records an export keeps of its files, and their check."""

from __future__ import annotations

from pathlib import Path

from tunix_core.evidence import digest_problems, file_digests, sha256_file


def test_a_folder_records_every_file_but_those_skipped(tmp_path: Path):
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "data").write_bytes(b"weights")
    (tmp_path / "config.json").write_text("{}")
    recorded = file_digests(tmp_path, skip={"config.json"})
    assert recorded == {
        "params/data": {"sha256": sha256_file(tmp_path / "params" / "data"), "bytes": 7}
    }
    assert digest_problems(tmp_path, recorded, "RECORD", skip={"config.json"}) == []

    (tmp_path / "params" / "data").write_bytes(b"weightz")
    (tmp_path / "extra").write_bytes(b"")
    assert digest_problems(tmp_path, recorded, "RECORD", skip={"config.json"}) == [
        f"{tmp_path / 'extra'}: not recorded in RECORD (added after the export)",
        f"{tmp_path / 'params' / 'data'}: sha256 differs from RECORD (changed after the export)",
    ]
    (tmp_path / "params" / "data").unlink()
    assert f"{tmp_path / 'params' / 'data'}: missing; RECORD records it" in digest_problems(
        tmp_path, recorded, "RECORD"
    )


def test_one_file_is_recorded_by_its_name(tmp_path: Path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    recorded = file_digests(gguf)
    assert list(recorded) == ["model.gguf"] and recorded["model.gguf"]["bytes"] == 64
    assert digest_problems(gguf, recorded, "RECORD") == []
    gguf.write_bytes(b"GGUF")
    assert digest_problems(gguf, recorded, "RECORD") == [
        f"{gguf}: 4 bytes, but RECORD records 64 (changed after the export)"
    ]
    gguf.unlink()
    assert digest_problems(gguf, recorded, "RECORD") == [f"{gguf}: missing; RECORD records it"]


def test_a_missing_or_empty_record_is_a_problem(tmp_path: Path):
    (tmp_path / "a").write_bytes(b"x")
    for recorded in (None, {}, ["a"]):
        assert digest_problems(tmp_path, recorded, "RECORD") == [
            f"RECORD: records no file digests, so the files of {tmp_path} cannot be checked; "
            "export them again"
        ]
