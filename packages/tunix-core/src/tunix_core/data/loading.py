"""Resolving a dataset spec (``name`` or ``name:argument``) to validated examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tunix_core.data.record import ReasoningExample, check_unique_ids
from tunix_core.errors import DataError
from tunix_core.protocols import DatasetRegistry, TransformRegistry
from tunix_core.registry import RegistryError


def resolve_provider(registry: DatasetRegistry, spec: str) -> tuple[Any, str | None]:
    """The provider instance for ``spec`` and the argument after ``name:``."""
    name, argument = registry.split_name(spec)
    try:
        target = registry.load(name)
    except RegistryError as exc:
        raise DataError(str(exc)) from None
    except ImportError as exc:
        raise DataError(f"dataset {name!r} cannot be imported: {exc}") from None
    return target(), argument


def split_names(registry: DatasetRegistry, spec: str) -> list[str]:
    """The splits the provider of ``spec`` offers."""
    provider, _ = resolve_provider(registry, spec)
    return list(provider.splits())


def load_split(
    registry: DatasetRegistry,
    spec: str,
    split: str,
    *,
    seed: int,
    transforms: TransformRegistry,
    options: Mapping[str, Any] | None = None,
    limit: int | None = None,
) -> list[ReasoningExample]:
    """The examples of ``split`` (the first ``limit`` of them, if given); ``transforms``:
    the run host's row transforms, for the provider.

    Raises :class:`DataError` for an unknown dataset or split, an empty split, items that
    are not :class:`ReasoningExample`, or two items with the same id.
    """
    provider, argument = resolve_provider(registry, spec)
    available = list(provider.splits())
    if split not in available:
        raise DataError(
            f"dataset {spec!r} has no split {split!r}; available: {', '.join(available)}"
        )
    examples = list(provider.load(split, argument=argument, seed=seed,
                                  options=dict(options or {}), transforms=transforms))  # fmt: skip
    if not examples:
        raise DataError(f"dataset {spec!r}: split {split!r} is empty")
    for index, example in enumerate(examples):
        if not isinstance(example, ReasoningExample):
            raise DataError(
                f"dataset {spec!r}: item {index} of split {split!r} is a "
                f"{type(example).__name__}, not a ReasoningExample"
            )
    check_unique_ids(examples, f"dataset {spec!r} split {split!r}")
    return examples[:limit] if limit is not None else examples
