from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tunix_core.data.loading import load_split, resolve_provider
from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.errors import DataError
from tunix_core.protocols import DatasetProvider, DatasetRegistry, TransformRegistry
from tunix_datasets.providers import BUILTIN_DATASETS
from tunix_datasets.transforms import register_builtin_transforms

TRANSFORMS = TransformRegistry()
register_builtin_transforms(TRANSFORMS)


class EmptyProvider:
    description = "always empty"

    def splits(self) -> Sequence[str]:
        return ("train",)

    def load(
        self, split: str, *, argument: str | None, seed: int, options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[Any]:
        return []


class SloppyProvider(EmptyProvider):
    """Returns what a careless plugin might: a dict, then two items with one id."""

    def load(
        self, split: str, *, argument: str | None, seed: int, options: Mapping[str, Any],
        transforms: TransformRegistry,
    ) -> list[Any]:
        item = ReasoningExample("same", "Q?", ("s",), "A", ExampleMeta("c"))
        return [{"question": "Q?"}] if argument == "dict" else [item, item]


def _registry(*names: str) -> DatasetRegistry:
    registry = DatasetRegistry()
    for name in names:
        registry.register(name.lower(), f"{__name__}:{name}")
    return registry


def test_every_builtin_target_is_a_dataset_provider(builtin_registry: DatasetRegistry) -> None:
    assert builtin_registry.names() == sorted(name for name, _, _ in BUILTIN_DATASETS)
    for entry in builtin_registry.entries():
        assert entry.description
        assert isinstance(entry.load()(), DatasetProvider), entry.name


def test_load_split_with_limit_and_options(builtin_registry: DatasetRegistry) -> None:
    items = load_split(builtin_registry, "dev-reasoning-v2", "eval", transforms=TRANSFORMS, seed=0, limit=5)
    assert len(items) == 5
    assert items == load_split(builtin_registry, "dev-reasoning-v2", "eval", transforms=TRANSFORMS, seed=0, options={})[:5]


def test_spec_argument_reaches_the_provider(
    builtin_registry: DatasetRegistry, tmp_path: Any
) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text('{"prompt": "Q?", "target": 1, "why": "because"}\n')
    options = {"columns": {"question": "prompt", "answer": "target", "steps": "why"}}
    items = load_split(builtin_registry, f"jsonl:{path}", "train", transforms=TRANSFORMS, seed=0, options=options)
    assert [(e.question, e.answer, e.steps) for e in items] == [("Q?", "1", ("because",))]
    provider, argument = resolve_provider(builtin_registry, f"jsonl:{path}")
    assert argument == str(path) and type(provider).__name__ == "JsonlProvider"


def test_unknown_dataset_suggests_the_closest(builtin_registry: DatasetRegistry) -> None:
    with pytest.raises(
        DataError, match=r"Unknown dataset 'dev-reasonin-v2'.*Did you mean 'dev-reasoning-v2'\?"
    ):
        load_split(builtin_registry, "dev-reasonin-v2", "train", transforms=TRANSFORMS, seed=0)


def test_unknown_split_lists_the_available_ones() -> None:
    with pytest.raises(
        DataError, match=r"dataset 'emptyprovider' has no split 'eval'; available: train"
    ):
        load_split(_registry("EmptyProvider"), "emptyprovider", "eval", transforms=TRANSFORMS, seed=0)


def test_empty_split_is_an_error() -> None:
    with pytest.raises(DataError, match=r"dataset 'emptyprovider': split 'train' is empty"):
        load_split(_registry("EmptyProvider"), "emptyprovider", "train", transforms=TRANSFORMS, seed=0)


def test_items_must_be_records_with_unique_ids() -> None:
    registry = _registry("SloppyProvider")
    with pytest.raises(
        DataError, match="item 0 of split 'train' is a dict, not a ReasoningExample"
    ):
        load_split(registry, "sloppyprovider:dict", "train", transforms=TRANSFORMS, seed=0)
    with pytest.raises(DataError, match="items 1 and 2 share the id 'same'"):
        load_split(registry, "sloppyprovider", "train", transforms=TRANSFORMS, seed=0)


def test_a_target_that_cannot_be_imported() -> None:
    registry = DatasetRegistry()
    registry.register("broken", "tunix_core.no_such_module:Provider")
    with pytest.raises(DataError, match="dataset 'broken' cannot be imported"):
        load_split(registry, "broken", "train", transforms=TRANSFORMS, seed=0)
