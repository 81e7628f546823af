"""``dataset.mix``: a seeded mixture of dev-reasoning-v2, gsm-symbolic and a JSONL file;
and ``tunix datasets show``'s counts and token lengths."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from tunix_core.config import structure_config
from tunix_core.data.loading import load_split
from tunix_core.data.mixture import LoadedSplit, load_dataset_split, normalise_question
from tunix_core.data.record import dumps_jsonl, read_jsonl
from tunix_core.errors import ConfigError, DataError
from tunix_core.protocols import BackendRegistry, DatasetRegistry, ModelSpec, TransformRegistry
from tunix_datasets.cli import datasets, manifest_path_for, token_summary
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

# The gsm-symbolic part needs tunix-datasets[gsm-symbolic] (nox's core tests install it).


@pytest.fixture
def user_file(tmp_path: Path, builtin_registry: DatasetRegistry) -> Path:
    """Twelve questions of one's own, plus one that dev-reasoning-v2's eval split asks and
    one its train split asks (in other case and spacing): both must be dropped."""
    dev_eval = load_split(builtin_registry, "dev-reasoning-v2", "eval", transforms=TRANSFORMS, seed=0)[0].question
    dev_train = load_split(builtin_registry, "dev-reasoning-v2", "train", transforms=TRANSFORMS, seed=0)[0].question
    rows = [{"question": f"Own question {i}?", "steps": [f"step {i}"], "answer": str(i)}
            for i in range(12)]  # fmt: skip
    rows.append({"question": "  " + dev_eval.upper(), "steps": ["s"], "answer": "x"})
    rows.append({"question": dev_train.replace(" ", "  "), "steps": ["s"], "answer": "y"})
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def mix_config(user_file: Path, seed: int = 0, **dataset: Any) -> dict[str, Any]:
    mix = [
        {"name": "dev-reasoning-v2", "weight": 2, "limit": 200},
        {"name": "gsm-symbolic", "options": {"train_size": 40, "eval_size": 10}},
        {"name": f"jsonl:{user_file}", "weight": 0.5, "options": {"eval_fraction": 0.3}},
    ]
    return {"dataset": {"mix": mix, "seed": seed, **dataset}}


def load(registry: DatasetRegistry, user_file: Path, split: str, seed: int = 0) -> LoadedSplit:
    section = structure_config(mix_config(user_file, seed)).dataset
    return load_dataset_split(registry, section, split, transforms=TRANSFORMS, limit=None)


def test_a_mixture_is_deterministic_distinct_and_disjoint(
    builtin_registry: DatasetRegistry, user_file: Path
) -> None:
    train, evaluation = (load(builtin_registry, user_file, split) for split in ("train", "eval"))
    assert load(builtin_registry, user_file, "train") == train  # same seed, same items, same order
    assert load(builtin_registry, user_file, "train", seed=1).examples != train.examples
    for loaded in (train, evaluation):
        questions = [normalise_question(e.question) for e in loaded.examples]
        assert len(questions) == len(set(questions))
        assert [p.name for p in loaded.parts] == [
            "dev-reasoning-v2", "gsm-symbolic", f"jsonl:{user_file}"
        ]  # fmt: skip
        assert sum(p.count for p in loaded.parts) == len(loaded.examples)
        assert all(p.count > 0 for p in loaded.parts)
        counts = [p.count for p in loaded.parts]
        # Weights 2 : 1 : 0.5, as close as whole items allow.
        assert abs(counts[0] - 2 * counts[1]) <= 2 and abs(counts[1] - 2 * counts[2]) <= 2
    train_questions = {normalise_question(e.question) for e in train.examples}
    eval_questions = {normalise_question(e.question) for e in evaluation.examples}
    assert not train_questions & eval_questions
    # The user's copies of dev-reasoning questions were dropped, wherever they landed.
    assert not {e.answer for e in train.examples + evaluation.examples
                if e.meta.source.startswith("jsonl:")} & {"x", "y"}  # fmt: skip


def test_each_part_reports_the_sha256_of_its_items(
    builtin_registry: DatasetRegistry, user_file: Path
) -> None:
    train = load(builtin_registry, user_file, "train")
    for part in train.parts:
        items = [e for e in train.examples if e.meta.source.startswith("jsonl:") ==
                 part.name.startswith("jsonl:") and (e.meta.category == "gsm_symbolic") ==
                 (part.name == "gsm-symbolic")]  # fmt: skip
        assert part.count == len(items)
        assert part.sha256 == hashlib.sha256(dumps_jsonl(items).encode()).hexdigest()


def test_train_limit_cuts_the_shuffled_mixture(
    builtin_registry: DatasetRegistry, user_file: Path
) -> None:
    section = structure_config(mix_config(user_file, train_limit=10)).dataset
    cut = load_dataset_split(builtin_registry, section, "train", transforms=TRANSFORMS, limit=section.train_limit)
    assert len(cut.examples) == 10 and sum(p.count for p in cut.parts) == 10
    assert cut.examples == load(builtin_registry, user_file, "train").examples[:10]


def test_a_mixture_s_ood_split_is_its_parts_ood_splits_whole_and_kept_out_of_train(
    builtin_registry: DatasetRegistry, tmp_path: Path
) -> None:
    v2_ood = load_split(builtin_registry, "dev-reasoning-v2", "ood", transforms=TRANSFORMS, seed=0)
    rows = [{"question": f"Own question {i}?", "steps": ["s"], "answer": str(i)} for i in range(8)]
    rows.append({"question": v2_ood[3].question.upper(), "steps": ["s"], "answer": "copied"})
    mine = tmp_path / "mine.jsonl"
    mine.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    mix = [{"name": "gsm-symbolic", "options": {"train_size": 20, "eval_size": 5}},
           {"name": f"jsonl:{mine}", "options": {"eval_fraction": 0.2}},
           {"name": "dev-reasoning-v2", "weight": 3, "limit": 100}]  # fmt: skip
    section = structure_config({"dataset": {"mix": mix}}).dataset

    def split(name: str) -> LoadedSplit:
        return load_dataset_split(builtin_registry, section, name, transforms=TRANSFORMS, limit=None)

    # dev-reasoning-v2's ood items, in its order (a run on v2 alone is scored on the same).
    ood = split("ood")
    assert ood.examples == v2_ood and [p.count for p in ood.parts] == [0, 0, len(v2_ood)]
    # The user's copy of an ood question is no training item.
    assert "copied" not in {e.answer for e in split("train").examples}
    without = structure_config({"dataset": {"mix": mix[:2]}}).dataset
    with pytest.raises(DataError, match=r"'dataset\.mix' has no split 'ood'; available: train, eval$"):
        load_dataset_split(builtin_registry, without, "ood", transforms=TRANSFORMS, limit=None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mix": [{"name": "golden-v2", "weight": 0}]}, r"dataset\.mix\[0\]\.weight: must be > 0"),
        ({"mix": [{"name": "golden-v2", "weight": -1.5}]}, r"weight: must be > 0, got -1\.5"),
        ({"mix": [{"name": " "}]}, r"dataset\.mix\[0\]\.name: must name a dataset"),
        ({"mix": [{"weight": 1}]}, r"dataset\.mix\[0\]\.name: required key is missing"),
        ({"mix": [{"name": "golden-v2", "limit": 0}]}, r"dataset\.mix\[0\]\.limit: must be > 0"),
        ({"mix": [{"name": "golden-v2"}], "options": {"eval_fraction": 0.1}},
         r"dataset\.options: with dataset\.mix, give options to each part"),
    ],
)
def test_bad_mixtures_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        structure_config({"dataset": change})


def test_options_of_every_section_stay_checked_after_a_mixture_is_read() -> None:
    # Structuring dataset.mix[].options once must not drop the mapping check elsewhere.
    structure_config({"dataset": {"mix": [{"name": "golden-v2", "options": {"a": 1}}]}})
    for section in ("model", "trainer", "package"):
        with pytest.raises(ConfigError, match=rf"{section}\.options: expected a mapping, got 'x'"):
            structure_config({section: {"options": "x"}})
    with pytest.raises(ConfigError, match=r"dataset\.mix\[0\]\.options: expected a mapping"):
        structure_config({"dataset": {"mix": [{"name": "golden-v2", "options": "x"}]}})


def test_unknown_part_names_and_splits(builtin_registry: DatasetRegistry, user_file: Path) -> None:
    section = structure_config({"dataset": {"mix": [{"name": "golden-v2"}, {"name": "nope"}]}})
    with pytest.raises(ConfigError, match=r"dataset\.mix\[1\]\.name: Unknown dataset 'nope'"):
        load_dataset_split(builtin_registry, section.dataset, "train", transforms=TRANSFORMS, limit=None)
    section = structure_config({"dataset": {"mix": [{"name": "golden-v2"}]}})
    with pytest.raises(DataError, match=r"'dataset\.mix' has no split 'test'"):
        load_dataset_split(builtin_registry, section.dataset, "test", transforms=TRANSFORMS, limit=None)
    # golden-v2's train items are its eval items: none is left to train on.
    with pytest.raises(DataError, match=r"dataset\.mix\[0\] \(golden-v2\): no train items left"):
        load_dataset_split(builtin_registry, section.dataset, "train", transforms=TRANSFORMS, limit=None)
    bad = structure_config({"dataset": {"mix": [{"name": "jsonl:/no/such.jsonl"}]}})
    with pytest.raises(DataError, match=r"dataset\.mix\[0\] \(jsonl:/no/such\.jsonl\): "):
        load_dataset_split(builtin_registry, bad.dataset, "eval", transforms=TRANSFORMS, limit=None)


def _run(host: SimpleNamespace, *args: str) -> Result:
    return CliRunner().invoke(datasets, list(args), obj=host, catch_exceptions=True)


def test_export_a_mixture_from_a_config_with_parts_in_the_manifest(
    host: SimpleNamespace, user_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "mix.yaml"
    config.write_text(yaml.safe_dump(mix_config(user_file)))
    out = tmp_path / "train.jsonl"
    result = _run(host, "export", "--config", str(config), "--split", "train", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads(manifest_path_for(out).read_text())
    loaded = load(host.datasets, user_file, "train")
    assert manifest["dataset"] == f"mix(dev-reasoning-v2,gsm-symbolic,jsonl:{user_file})"
    assert manifest["parts"] == [part.as_dict() for part in loaded.parts]
    assert [p["name"] for p in manifest["mix"]] == [p.name for p in loaded.parts]
    assert read_jsonl(out) == loaded.examples
    both = _run(host, "export", "golden-v2", "--config", str(config), "--split", "train",
                "--out", str(out))  # fmt: skip
    assert both.exit_code == 2 and "give a dataset NAME or --config FILE" in both.output


def test_show_counts_parts_and_categories(
    host: SimpleNamespace, user_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "mix.yaml"
    config.write_text(yaml.safe_dump(mix_config(user_file)))
    result = _run(host, "show", "-c", str(config), "--split", "eval", "--limit", "0")
    assert result.exit_code == 0, result.output
    loaded = load(host.datasets, user_file, "eval")
    by_part = " · ".join(f"{p.name} {p.count}" for p in loaded.parts)
    assert f"· eval: {len(loaded.examples)} items\n  by part:     {by_part}\n" in result.output
    assert "gsm_symbolic " in result.output.split("by category:")[1]
    assert "  Q: " not in result.output


class WordCounter:
    """A model whose tokenizer is str.split, with a bos token."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def count_tokens(self, text: str) -> int:
        return 1 + len(text.split())


class WordBackend:
    def validate(self, spec: ModelSpec) -> None:
        assert spec.preset == "tiny"

    def load(self, spec: ModelSpec, *, progress: Any) -> WordCounter:
        return WordCounter(spec)


class MuteBackend(WordBackend):
    def load(self, spec: ModelSpec, *, progress: Any) -> Any:
        return object()


def test_show_tokens_uses_the_backend_s_token_counter(
    builtin_registry: DatasetRegistry, tmp_path: Path
) -> None:
    from tunix_core.data.render import render_example

    backends = BackendRegistry()
    backends.register("words", f"{__name__}:WordBackend")
    backends.register("mute", f"{__name__}:MuteBackend")
    host = SimpleNamespace(datasets=builtin_registry, transforms=TRANSFORMS, backends=backends)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"name": "golden-v2"},
                                      "model": {"backend": "words", "preset": "gemma3-1b"},
                                      "training": {"max_seq_len": 40}}))  # fmt: skip
    examples = load_split(builtin_registry, "golden-v2", "eval", transforms=TRANSFORMS, seed=0)
    lengths = [1 + len(render_example(e).text.split()) for e in examples]
    result = _run(host, "show", "-c", str(config), "--tokens", "--preset", "tiny", "--limit", "0")
    assert result.exit_code == 0, result.output
    assert "  " + token_summary(lengths, "tiny", 40) + "\n" in result.output
    assert "over training.max_seq_len=40" in result.output
    override = _run(host, "show", "-c", str(config), "--tokens", "--preset", "tiny",
                    "--max-seq-len", "1000")  # fmt: skip
    assert "0 of 100 (0.0%) over training.max_seq_len=1000" in override.output
    config.write_text(yaml.safe_dump({"model": {"backend": "mute", "preset": "tiny"}}))
    mute = _run(host, "show", "-c", str(config), "--tokens")
    assert isinstance(mute.exception, ConfigError)
    assert "'mute' loads models that cannot count tokens" in str(mute.exception)


def test_token_summary_percentiles_and_share_over_max_seq_len() -> None:
    lengths: Sequence[int] = list(range(1, 101))  # 1..100
    assert token_summary(lengths, "tiny", 89) == (
        "tokens (tiny): p50 50 · p90 90 · p99 99 · max 100; 10 of 100 (10.0%) over "
        "training.max_seq_len=89"
    )
