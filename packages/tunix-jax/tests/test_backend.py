"""The ``jax`` model backend: one load per spec, clear errors naming ``model.*``, an
export it can check, verify and load back, and log-probabilities through its tokenizer."""

from __future__ import annotations

import jax
import pytest
from flax import nnx

from tunix_core.errors import ConfigError
from tunix_core.plugins import PluginHost
from tunix_core.protocols import LoadedModel, ModelBackend, ModelSpec, RunContext
from tunix_jax.backend import JaxBackend

TINY = ModelSpec("tiny-gemma3", "random")


@pytest.fixture(scope="module")
def backend() -> JaxBackend:
    return JaxBackend()


def test_it_is_a_model_backend_and_loads_each_spec_once(backend):
    assert isinstance(backend, ModelBackend)
    model = backend.load(TINY, progress=print)
    assert isinstance(model, LoadedModel) and model.spec == TINY
    assert backend.load(ModelSpec("tiny-gemma3", "random"), progress=print) is model
    assert backend.load(ModelSpec("tiny-gemma3", "random", seed=1), progress=print) is not model


def test_a_base_model_consumed_by_a_full_fine_tune_is_loaded_again():
    backend = JaxBackend()
    model = backend.load(TINY, progress=print)
    # A full fine-tune's train step donates the parameter buffers it was given.
    jax.tree.leaves(nnx.state(model.transformer))[0].delete()
    again = backend.load(TINY, progress=print)
    assert again is not model
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(nnx.state(again.transformer)))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ModelSpec("gemma9-1b"), r"^model\.preset: "),
        (ModelSpec("tiny-gemma3", "gguf:/nowhere/m.gguf"), r"^model\.weights: gguf weights not found"),
        (ModelSpec("gemma3-1b", "default"), r"^model\.weights: 'default' is the Gemma 3 270M"),
        (ModelSpec("tiny-gemma3", "random", tokenizer="/no/t.model"), r"^model\.tokenizer: "),
        (ModelSpec("tiny-gemma3", "random", options={"mesh_data": 0}), r"model\.options\.mesh_data"),
        (ModelSpec("tiny-gemma3", "random", options={"mesh": 2}), r"model\.options\.mesh: unknown"),
    ],
)
def test_validate_names_the_field(backend, spec, message):
    with pytest.raises(ConfigError, match=message):
        backend.validate(spec)


def test_validate_reads_a_gguf_header_and_names_a_wrong_embedding(
    backend, tmp_path, tiny_model, gguf_writer
):
    model, tokenizer = tiny_model("tiny-gemma3")
    path = gguf_writer(tmp_path / "tiny.gguf", model, tokenizer)
    backend.validate(ModelSpec("tiny-gemma3", f"gguf:{path}"))
    with pytest.raises(ConfigError, match=r"^model\.weights: .*tiny\.gguf has an embedding of shape"):
        backend.validate(ModelSpec("gemma3-270m", f"gguf:{path}"))
    (tmp_path / "junk.gguf").write_bytes(b"not a gguf file at all")
    with pytest.raises(ConfigError, match=r"^model\.weights: cannot read GGUF file .*junk\.gguf"):
        backend.validate(ModelSpec("tiny-gemma3", f"gguf:{tmp_path / 'junk.gguf'}"))


def test_export_check_verify_and_load_back(tmp_path):
    backend = JaxBackend()
    lines: list[str] = []
    model = backend.load(TINY, progress=lines.append)
    export = backend.export(model, tmp_path / "model")
    assert export.directory == tmp_path / "model" and export.model_id == "tiny-gemma3@random"
    assert backend.export_problems(export.directory) == []
    report = backend.verify(export.directory, progress=lines.append)
    assert report["ok"] is True, report
    # The backend that exported keeps the model: nothing is read back.
    kept = backend.load_export(export.directory, TINY, progress=lines.append)
    # Another backend (a resumed run's new process) reads the export from disk.
    loaded = JaxBackend().load_export(export.directory, TINY, progress=lines.append)
    assert [line.split(" in ")[0] for line in lines] == [
        "[load] tiny-gemma3, weights random (float32),",
        f"[load] export {export.directory} with tunix_jax (round trip)",
        f"[load] export {export.directory} (tiny-gemma3, float32)",
    ]
    assert kept.transformer is not model.transformer  # the same arrays, laid out as loaded
    prompt = "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    expected = model.generate([prompt], max_new_tokens=4)
    assert kept.generate([prompt], max_new_tokens=4) == expected
    assert loaded.generate([prompt], max_new_tokens=4) == expected

    (export.directory / "probe.json").unlink()
    assert backend.export_problems(export.directory) == [
        f"{export.directory / 'probe.json'}: missing from the model export"
    ]


def test_scores_are_log_probabilities_of_the_completion(backend):
    from tunix_jax.models.gemma.scoring import completion_logprobs

    model = backend.load(TINY, progress=print)
    prompts, completions = ["<start_of_turn>user\nHi", "Q"], [" there", ""]
    scores = model.score(prompts, completions)
    ids = [model.tokenizer.encode(p, add_bos=True) for p in prompts]
    expected = completion_logprobs(model.transformer, ids,
                                   [model.tokenizer.encode(c) for c in completions])  # fmt: skip
    assert scores == expected and scores[0] < 0 and scores[1] == 0.0
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        model.score(prompts, completions[:1])


def test_training_leaves_the_shared_base_model_as_it_was(tmp_path):
    """LoRA training takes the backend's base model and must not write into it: the
    baseline evaluation shares it, and a later load of the same spec returns it."""
    from tunix_core.config import structure_config
    from tunix_core.rundir import RunDirectory
    from tunix_jax.export.writing import param_fingerprint
    from tunix_jax.sft.trainer import JaxTrainer
    from tunix_jax.weights.loading import model_params

    backend = JaxBackend()
    config = structure_config({
        "dataset": {"system_prompt": "S."},
        "model": {"preset": "tiny-gemma3", "weights": "random"},
        "training": {"steps": 2, "batch_size": 2, "max_seq_len": 256, "lora": {"rank": 2}},
        "trainer": {"options": {"progress_bar": False}},
    })  # fmt: skip
    base = backend.load(ModelSpec.from_config(config), progress=print)
    before = param_fingerprint(model_params(base.transformer))
    run = RunDirectory.create(tmp_path, "r", model_id="tiny", dataset="d", trainer="jax",
                              config_path=None, command=["pytest"])  # fmt: skip
    from tunix_core.data.loading import load_split
    from tunix_core.plugins import get_host

    host = get_host()
    examples = load_split(host.datasets, "dev-reasoning-v2", "train", seed=0, transforms=host.transforms, limit=4)
    result = JaxTrainer().train(config, run, examples, backend=backend,
                                context=RunContext(PluginHost(), run))  # fmt: skip
    assert result.export is not None and result.export.fingerprint != before
    assert backend.load(ModelSpec.from_config(config), progress=print) is base
    assert param_fingerprint(model_params(base.transformer)) == before
