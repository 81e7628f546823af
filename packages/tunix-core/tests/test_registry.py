import pytest

from tunix_core.protocols import AnswerCheckRegistry, DatasetRegistry, TrainerRegistry
from tunix_core.registry import (
    DuplicateNameError,
    Entry,
    Registry,
    RegistryError,
    RegistryView,
    UnknownNameError,
)


def test_lazy_target_is_imported_only_on_load():
    registry: Registry[object] = Registry("thing")
    registry.register("path", "os.path:join")
    entry = registry.entry("path")
    assert entry.target == "os.path:join"
    import os.path

    assert registry.load("path") is os.path.join


def test_unknown_name_lists_installed_and_suggests_closest():
    registry = TrainerRegistry()
    registry.register("jax", "tunix_jax.sft.trainer:JaxTrainer")
    with pytest.raises(UnknownNameError) as info:
        registry.entry("jxa")
    assert str(info.value).startswith("Unknown trainer 'jxa'. Installed: jax. Did you mean 'jax'?")
    assert "pip install tunix-jax" in str(info.value)


def test_unknown_name_without_close_match_has_no_suggestion():
    registry = TrainerRegistry()
    registry.register("jax", "m:a")
    assert "Did you mean" not in registry.unknown_message("pytorch-lightning")


def test_duplicate_name_names_both_distributions():
    registry = TrainerRegistry()
    RegistryView(registry, "tunix-jax").register("jax", "tunix_jax.sft.trainer:JaxTrainer")
    RegistryView(registry, "other-jax").register("jax", "other.trainer:T")
    assert registry.conflicts() and "tunix-jax" in registry.conflicts()[0]
    with pytest.raises(DuplicateNameError) as info:
        registry.entry("jax")
    assert "tunix-jax (tunix_jax.sft.trainer:JaxTrainer)" in str(info.value)
    assert "other-jax (other.trainer:T)" in str(info.value)


def test_a_view_attributes_registrations_and_reads_the_whole_registry():
    registry = DatasetRegistry()
    registry.register("golden", "tunix_core.data:Golden")
    view = RegistryView(registry, "tunix-alpha")
    view.register("alpha", "alpha.data:Alpha", description="a", split="train")
    assert registry.entry("alpha") == Entry(
        "alpha", "alpha.data:Alpha", "a", "tunix-alpha", {"split": "train"}
    )
    assert registry.entry("golden").distribution == "unknown"
    assert "golden" in view and view.names() == ["alpha", "golden"]
    assert view.split_name("jsonl:x") == ("jsonl", "x")


@pytest.mark.parametrize("target", ["no_colon", ":attr", "module:"])
def test_bad_target(target):
    registry: Registry[object] = Registry("thing")
    if ":" not in target:
        with pytest.raises(RegistryError):
            registry.register("x", target)
    else:
        registry.register("x", target)
        with pytest.raises(RegistryError, match=r"expected 'package\.module:attribute'"):
            registry.load("x")


def test_dataset_names_carry_an_argument():
    registry = DatasetRegistry()
    registry.register("jsonl", "m:P")
    assert DatasetRegistry.split_name("jsonl:data/a.jsonl") == ("jsonl", "data/a.jsonl")
    assert DatasetRegistry.split_name("golden-v2") == ("golden-v2", None)
    assert registry.entry("jsonl:/tmp/x.jsonl").name == "jsonl"


@pytest.mark.parametrize("name", ["Exact", "yes no", "2nd", "_private", "a:b", ""])
def test_answer_check_names_are_what_meta_answer_match_accepts(name):
    registry = AnswerCheckRegistry()
    with pytest.raises(RegistryError, match=f"invalid answer check name {name!r}"):
        registry.register(name, "m:check")
    registry.register("yes_no-2", "m:check")
    assert "pip install tunix-eval" in registry.unknown_message("exact")
