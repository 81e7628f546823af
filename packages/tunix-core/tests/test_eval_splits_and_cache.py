"""A run's final evaluation covers the eval split and, when the dataset has one, its ood
split (reported side by side in eval_summary.json); the untrained baseline is kept in the
baseline cache and copied from it when nothing that shapes it changed."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tunix_core import api, baseline_cache, builtin
from tunix_core.config import RunConfig, structure_config
from tunix_core.data.record import ExampleMeta, ReasoningExample
from tunix_core.decoding import DecodingOptions
from tunix_core.errors import ConfigError
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, plugin_module
from tunix_core.protocols import (
    AnswerVerdict,
    EvaluatorReport,
    ModelExport,
    ModelSpec,
    RunContext,
)
from tunix_core.rundir import RunDirectory

SIZES = {"train": 4, "eval": 3, "ood": 5}


def item(split: str, index: int, prefix: str = "") -> ReasoningExample:
    return ReasoningExample(id=f"{prefix}{split}-{index}", question=f"{prefix}{split} question {index}?",
                            steps=("think",), answer=str(index),
                            meta=ExampleMeta(category="count", source="tiny"))  # fmt: skip


class TinyProvider:
    """train, eval and (unless built without it) ood items; the answer is the index."""

    description = "a tiny dataset with an ood split"
    split_names: Sequence[str] = ("train", "eval", "ood")

    def splits(self) -> Sequence[str]:
        return self.split_names

    def load(self, split: str, **_: Any) -> list[ReasoningExample]:
        return [item(split, index) for index in range(SIZES[split])]


class NoOodProvider(TinyProvider):
    """Other questions, and no ood split."""

    split_names = ("train", "eval")

    def load(self, split: str, **_: Any) -> list[ReasoningExample]:
        return [item(split, index, "other-") for index in range(SIZES[split])]


class CountingModel:
    """Answers 1 to every question and counts the prompts it was asked; records the
    decoding options it was given."""

    prompts: ClassVar[list[str]] = []
    decodings: ClassVar[list[DecodingOptions | None]] = []

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int,
                 decoding: DecodingOptions | None = None) -> list[str]:  # fmt: skip
        CountingModel.prompts.extend(prompts)
        CountingModel.decodings.append(decoding)
        return ["<reasoning>r</reasoning><answer>1</answer>" for _ in prompts]

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> list[float]:
        return [0.0 for _ in prompts]


class CountingBackend:
    name = "counting"

    def validate(self, spec: ModelSpec) -> None:
        pass

    def load(self, spec: ModelSpec, *, progress: Any) -> CountingModel:
        return CountingModel(spec)

    def load_export(self, directory: Path, spec: ModelSpec, *, progress: Any) -> CountingModel:
        return CountingModel(spec)

    def export(self, model: Any, directory: Path, **extras: Any) -> ModelExport:
        directory.mkdir(exist_ok=True)
        (directory / "model_config.json").write_text("{}")
        return ModelExport(directory, "tiny@trained", "sha256:trained")

    def verify(self, directory: Path, *, progress: Any) -> dict[str, Any]:
        return {"ok": True}

    def export_problems(self, directory: Path) -> list[str]:
        return []


class ExportingTrainer:
    def validate(self, config: Any, *, context: Any) -> None:
        pass

    def train(self, config: Any, run: Any, examples: Any, *, backend: Any, context: Any) -> Any:
        from tunix_core.protocols import TrainResult

        run.metrics_path.write_text("")
        export = backend.export(None, run.model_dir)
        return TrainResult(steps=1, export=export)


@hookimpl
def _datasets(registry: Any) -> None:
    registry.register("tiny-ood", f"{__name__}:TinyProvider")
    registry.register("tiny-no-ood", f"{__name__}:NoOodProvider")


def same_text(answer: str, expected: str, options: Any) -> AnswerVerdict:
    return AnswerVerdict(answer.strip() == expected.strip(), "same-text")


@hookimpl
def _answer_checks(registry: Any) -> None:
    registry.register("auto", f"{__name__}:same_text")


class CountEvaluator:
    name = "count"

    def evaluate(self, predictions: Sequence[Any], *, context: Any) -> EvaluatorReport:
        return EvaluatorReport({"items": len(predictions)})


@hookimpl
def _evaluators(registry: Any) -> None:
    registry.register("count", f"{__name__}:CountEvaluator")


@hookimpl
def _backends(registry: Any) -> None:
    registry.register("counting", f"{__name__}:CountingBackend")


@hookimpl
def _trainers(registry: Any) -> None:
    registry.register("exporting", f"{__name__}:ExportingTrainer")


@pytest.fixture
def host() -> PluginHost:
    CountingModel.prompts.clear()
    CountingModel.decodings.clear()
    host = PluginHost()
    host.add_plugin(builtin, "core", "tunix-core")
    host.add_plugin(plugin_module("splits-test", tunix_register_datasets=_datasets,
                                  tunix_register_backends=_backends,
                                  tunix_register_trainers=_trainers,
                                  tunix_register_answer_checks=_answer_checks,
                                  tunix_register_evaluators=_evaluators),
                    "splits-test", "tunix-splits-test")  # fmt: skip
    host.fill_registries()
    return host


def config(output_dir: Path, dataset: str = "tiny-ood", **eval_section: Any) -> dict[str, Any]:
    return {
        "run": {"name": "splits", "output_dir": str(output_dir)},
        "dataset": {"name": dataset},
        "trainer": {"name": "exporting"},
        "model": {"backend": "counting"},
        "eval": {"evaluators": [], **eval_section},
        "package": {"enabled": False},
    }


def run_once(host: PluginHost, settings: Mapping[str, Any]) -> tuple[RunDirectory, list[str]]:
    lines: list[str] = []
    path = api.run(dict(settings), host=host, echo=lines.append)
    return RunDirectory.open(path), lines


def test_a_dataset_with_an_ood_split_is_evaluated_on_it_too_and_reported_beside_eval(
    host: PluginHost, tmp_path: Path
):
    run, _ = run_once(host, config(tmp_path / "runs"))
    assert len(run.ood_data_path.read_text().splitlines()) == SIZES["ood"]
    summary = json.loads(run.summary_path.read_text())
    # The eval split keeps its keys; ood comes under splits.ood, with its standard errors.
    assert summary["counts"]["items"] == SIZES["eval"] and summary["source"]["split"] == "eval"
    ood = summary["splits"]["ood"]
    assert (ood["n"], ood["correct"]) == (SIZES["ood"], 1)  # only item 1's answer is 1
    assert ood["answer_accuracy_stderr"] == pytest.approx((0.2 * 0.8 / 5) ** 0.5)
    assert ood["summary"] == "ood/eval_summary.json"
    own = json.loads((run.ood_dir / "eval_summary.json").read_text())
    assert own["source"]["split"] == "ood" and own["label"] == "final-ood"
    assert own["source"]["dataset_sha256"] == ood["dataset_sha256"]
    assert run.manifest["stages"]["dataset"]["detail"]["ood_items"] == SIZES["ood"]
    baseline = json.loads(run.baseline_summary_path.read_text())
    assert baseline["splits"]["ood"]["n"] == SIZES["ood"]


def test_eval_splits_can_leave_ood_out_and_a_dataset_without_one_is_evaluated_on_eval(
    host: PluginHost, tmp_path: Path
):
    run, _ = run_once(host, config(tmp_path / "a", splits=["eval"], baseline=False))
    assert not run.ood_data_path.exists()
    assert "splits" not in json.loads(run.summary_path.read_text())
    run, _ = run_once(host, config(tmp_path / "b", dataset="tiny-no-ood", baseline=False))
    assert not run.ood_data_path.exists() and not run.ood_dir.exists()


def test_asking_for_an_ood_split_the_dataset_lacks_fails_naming_the_field(
    host: PluginHost, tmp_path: Path
):
    with pytest.raises(ConfigError, match=r"^eval.splits: dataset 'tiny-no-ood' has no 'ood' "
                       r"split \(it has train, eval\)$"):  # fmt: skip
        run_once(host, config(tmp_path, dataset="tiny-no-ood", splits=["eval", "ood"]))
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_a_mixture_is_evaluated_on_the_ood_split_of_the_parts_that_have_one(
    host: PluginHost, tmp_path: Path
):
    mix = [{"name": "tiny-no-ood"}, {"name": "tiny-ood"}]
    settings = {**config(tmp_path / "mix", baseline=False), "dataset": {"mix": mix}}
    run, _ = run_once(host, settings)
    # The part's own ood items, whole and in its order, so they pair with a run on it alone.
    assert [json.loads(line)["id"] for line in run.ood_data_path.read_text().splitlines()] == [
        f"ood-{index}" for index in range(SIZES["ood"])
    ]  # fmt: skip
    assert json.loads(run.summary_path.read_text())["splits"]["ood"]["n"] == SIZES["ood"]
    during = {"every": 2, "split": "ood"}
    alone = {**config(tmp_path / "alone", during_training=during),
             "dataset": {"mix": [{"name": "tiny-no-ood"}]}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"saves no 'ood' items \(no part of the mixture has "
                       r"one\); use split: eval$"):  # fmt: skip
        run_once(host, alone)


@pytest.mark.parametrize(("splits", "message"), [
    (["eval", "test"], "unknown split 'test'"),
    (["ood"], "must list 'eval' once"),
    (["eval", "eval"], "must list 'eval' once"),
])  # fmt: skip
def test_a_bad_eval_splits_is_refused_in_one_line_naming_the_field(splits: list[str], message: str):
    with pytest.raises(ConfigError, match=rf"(?m)^  eval\.splits: {message}[^\n]*$"):
        structure_config({"eval": {"splits": splits}})


def test_an_evaluation_during_training_of_a_split_the_run_does_not_save_is_refused(
    host: PluginHost, tmp_path: Path
):
    during = {"every": 2, "split": "ood"}
    with pytest.raises(ConfigError, match=r"^eval\.during_training\.split: the run saves no 'ood' "
                       r"items \(dataset 'tiny-no-ood' has none\); use split: eval$"):  # fmt: skip
        run_once(host, config(tmp_path, dataset="tiny-no-ood", during_training=during))
    with pytest.raises(ConfigError, match=r"\(eval\.splits leaves it out\)"):
        run_once(host, config(tmp_path, splits=["eval"], during_training=during))
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
    # Off (every unset), or on the eval split, it needs no ood items.
    run_once(host, config(tmp_path / "off", dataset="tiny-no-ood", baseline=False,
                          during_training={"split": "ood"}))  # fmt: skip
    run_once(host, config(tmp_path / "eval", dataset="tiny-no-ood", baseline=False,
                          during_training={"every": 2, "split": "eval"}))  # fmt: skip


@pytest.mark.parametrize(("during", "message"), [
    ({"every": 0}, "every: must be > 0, got 0"),
    ({"split": "train"}, "split: must be one of 'eval', 'ood', got 'train'"),
    ({"limit": 0}, "limit: must be > 0, got 0"),
    ({"evry": 2}, "evry: unknown key"),
])  # fmt: skip
def test_a_bad_eval_during_training_is_refused_naming_the_field(during: dict[str, Any],
                                                                 message: str):  # fmt: skip
    with pytest.raises(ConfigError, match=rf"(?m)^  eval\.during_training\.{message}"):
        structure_config({"eval": {"during_training": during}})


def test_measuring_during_training_scores_like_the_evaluation_and_writes_nothing(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from tunix_core.evaluation import during_training_metrics, measure_examples

    monkeypatch.chdir(tmp_path)
    items = [item("ood", index) for index in range(4)]  # the model answers 1: item 1 is right
    summary = measure_examples(CountingModel(ModelSpec("tiny")), items, [], system_prompt="",
                               max_new_tokens=8, batch_size=3, label="step 2 ood",
                               context=RunContext(host))  # fmt: skip
    assert len(CountingModel.prompts) == 4
    assert during_training_metrics("ood", summary) == {"eval/ood_accuracy": 0.25,
                                                       "eval/ood_format": 1.0}  # fmt: skip
    assert not any(tmp_path.iterdir())


def test_a_second_run_copies_its_baseline_from_the_cache(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TUNIX_BASELINE_CACHE_DIR", str(tmp_path / "cache"))
    first, lines = run_once(host, config(tmp_path / "first"))
    assert sum("baseline cache miss" in line for line in lines) == 2  # eval and ood
    asked = len(CountingModel.prompts)
    assert asked == 2 * (SIZES["eval"] + SIZES["ood"])  # baseline and final, each split
    second, lines = run_once(host, config(tmp_path / "second"))
    assert sum("baseline cache hit" in line for line in lines) == 2
    # Only the trained model was asked anything.
    assert len(CountingModel.prompts) - asked == SIZES["eval"] + SIZES["ood"]
    for name in ("baseline_predictions_path", "baseline_summary_path"):
        assert getattr(second, name).is_file()
    assert (second.baseline_ood_dir / "predictions.jsonl").read_bytes() == (
        first.baseline_ood_dir / "predictions.jsonl").read_bytes()  # fmt: skip
    copied = json.loads(second.baseline_summary_path.read_text())
    assert copied["source"]["run"] == second.run_id
    assert copied["source"]["cached_from"] == first.run_id
    assert copied["splits"]["ood"]["n"] == SIZES["ood"]
    # Turned off, the cache is neither read nor said.
    _, lines = run_once(host, config(tmp_path / "third", baseline_cache=False))
    assert not any("baseline cache" in line for line in lines)


def key_of(host: PluginHost, tmp_path: Path, *, items: int = 3, split: str = "eval",
           model: Mapping[str, Any] | None = None, dataset: Mapping[str, Any] | None = None,
           **eval_section: Any) -> dict[str, Any]:  # fmt: skip
    settings = config(tmp_path, **eval_section)
    settings["model"] = {**settings["model"], **(model or {})}
    settings["dataset"] = {**settings["dataset"], **(dataset or {})}
    run_config = structure_config(settings)
    examples = [item("eval", index) for index in range(items)]
    return baseline_cache.baseline_key(run_config, RunContext(host), examples, split=split)


def test_the_cache_misses_when_any_of_its_keys_changes_and_hits_otherwise(
    host: PluginHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("TUNIX_BASELINE_CACHE_DIR", str(tmp_path / "cache"))
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"weights")
    base = {"model": {"weights": f"gguf:{weights}"}}
    out = tmp_path / "measured"
    out.mkdir()
    (out / "eval_summary.json").write_text('{"source": {"run": "first"}}')
    (out / "predictions.jsonl").write_text('{"id": "eval-0"}\n')
    baseline_cache.store(key_of(host, tmp_path, **base), out)
    assert baseline_cache.lookup(key_of(host, tmp_path, **base)) is not None
    changed = {
        "model preset": {"model": {**base["model"], "preset": "gemma3-1b"}},
        "model dtype": {"model": {**base["model"], "dtype": "bfloat16"}},
        "eval dtype": {**base, "dtype": "bfloat16"},
        "model options": {"model": {**base["model"], "options": {"mesh_fsdp": 2}}},
        "model weights spec": {"model": {"weights": "default"}},
        "items": {**base, "items": 2},
        "split": {**base, "split": "ood"},
        "max_new_tokens": {**base, "max_new_tokens": 64},
        "batch_size": {**base, "batch_size": 8},
        "evaluators": {**base, "evaluators": ["count"]},
        "repetition guard": {**base, "no_repeat_ngram_size": 8},
        "reasoning budget": {**base, "reasoning_budget": 100},
        "system prompt": {**base, "dataset": {"system_prompt": "Answer."}},
    }
    for what, settings in changed.items():
        assert baseline_cache.lookup(key_of(host, tmp_path, **settings)) is None, what
    weights.write_bytes(b"other weights")  # the same path, another file
    assert baseline_cache.lookup(key_of(host, tmp_path, **base)) is None
    # A corrupt entry is a miss, not a crash.
    weights.write_bytes(b"weights")
    entry = baseline_cache.entry_path(key_of(host, tmp_path, **base))
    entry.write_text("{not json")
    assert baseline_cache.lookup(key_of(host, tmp_path, **base)) is None


def test_decoding_guards_reach_a_generator_that_takes_them_and_are_recorded(
    host: PluginHost, tmp_path: Path
):
    run, _ = run_once(host, config(tmp_path, splits=["eval"], baseline=False,
                                   no_repeat_ngram_size=6, reasoning_budget=90))  # fmt: skip
    assert CountingModel.decodings == [DecodingOptions(6, 90)]
    summary = json.loads(run.summary_path.read_text())
    assert summary["generation"]["decoding"] == {"no_repeat_ngram_size": 6, "reasoning_budget": 90}
    with pytest.raises(ConfigError, match=r"eval\.no_repeat_ngram_size: must be >= 2"):
        structure_config({"eval": {"no_repeat_ngram_size": 1}})


class PlainModel(CountingModel):
    def generate(self, prompts: Sequence[str], *, max_new_tokens: int) -> list[str]:  # type: ignore[override]
        return ["<reasoning>r</reasoning><answer>1</answer>" for _ in prompts]


def test_decoding_guards_for_a_generator_without_them_are_refused_naming_the_fields(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.evaluation import evaluate_examples

    with pytest.raises(ConfigError, match=r"^eval\.no_repeat_ngram_size, eval\.reasoning_budget: "
                       r"the model's generator \(PlainModel\) takes no decoding options"):  # fmt: skip
        evaluate_examples(PlainModel(ModelSpec("tiny")), [item("eval", 0)], [], system_prompt="",
                          max_new_tokens=8, batch_size=1, out_dir=tmp_path, label="x",
                          context=RunContext(host), decoding=DecodingOptions(reasoning_budget=4))  # fmt: skip
    assert not (tmp_path / "predictions.jsonl").exists()


def test_a_generator_without_guards_decodes_plainly_under_the_default_budget(
    host: PluginHost, tmp_path: Path
):
    from tunix_core.evaluation import evaluate_examples

    default = RunConfig().eval.decoding
    assert default.reasoning_budget == 120 and default.is_default
    summary = evaluate_examples(PlainModel(ModelSpec("tiny")), [item("eval", 0)], [],
                                system_prompt="", max_new_tokens=8, batch_size=1,
                                out_dir=tmp_path, label="x", context=RunContext(host),
                                decoding=default)  # fmt: skip
    assert "decoding" not in summary["generation"]  # nothing was applied, so none is recorded
    assert (tmp_path / "predictions.jsonl").is_file()
