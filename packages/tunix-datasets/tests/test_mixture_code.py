"""``dataset.mix`` with code: dev-reasoning-v2, gsm-symbolic and humaneval together (needs
tunix-datasets[gsm-symbolic,humaneval], which nox's core tests install)."""

from __future__ import annotations

from pathlib import Path

from tunix_core.config import structure_config
from tunix_core.data.mixture import LoadedSplit, load_dataset_split, normalise_question
from tunix_core.data.record import read_jsonl, write_jsonl
from tunix_core.protocols import DatasetRegistry, TransformRegistry
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)

MIX = [
    {"name": "dev-reasoning-v2", "limit": 120},
    {"name": "gsm-symbolic", "options": {"train_size": 40, "eval_size": 10}},
    {"name": "humaneval", "weight": 0.5},
]


def load(registry: DatasetRegistry, split: str, seed: int = 0) -> LoadedSplit:
    section = structure_config({"dataset": {"mix": MIX, "seed": seed}}).dataset
    return load_dataset_split(registry, section, split, transforms=TRANSFORMS, limit=None)


def test_a_mixture_with_code_is_deterministic_distinct_and_disjoint(
    builtin_registry: DatasetRegistry, tmp_path: Path
) -> None:
    train, evaluation = load(builtin_registry, "train"), load(builtin_registry, "eval")
    assert load(builtin_registry, "train") == train
    assert load(builtin_registry, "eval", seed=1).examples != evaluation.examples
    for loaded in (train, evaluation):
        questions = [normalise_question(e.question) for e in loaded.examples]
        assert len(questions) == len(set(questions))
        assert len({e.id for e in loaded.examples}) == len(loaded.examples)
        assert [p.name for p in loaded.parts] == ["dev-reasoning-v2", "gsm-symbolic", "humaneval"]
        assert all(p.count > 0 for p in loaded.parts)
    train_questions = {normalise_question(e.question) for e in train.examples}
    eval_questions = {normalise_question(e.question) for e in evaluation.examples}
    assert not train_questions & eval_questions
    code = [e for e in evaluation.examples if e.meta.answer_match == "code"]
    assert code and all("test" in e.meta.extra for e in code)
    # The code items keep their tests through the run's saved data file.
    write_jsonl(evaluation.examples, tmp_path / "eval.jsonl")
    assert read_jsonl(tmp_path / "eval.jsonl") == evaluation.examples
