"""``tunix generate`` and ``tunix chat`` with the real ``jax`` backend and
tiny models: a preset, a run directory's exported model, and a chat in a pseudo-terminal."""

from __future__ import annotations

import json
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from flax import nnx

from tunix_core.config import RunConfig, unstructure_config
from tunix_core.data.parse import parse_completion
from tunix_core.data.render import render_prompt
from tunix_core.protocols import ModelSpec, StreamingModel
from tunix_core.rundir import RunDirectory
from tunix_eval.chat import PROMPT, STOPPED
from tunix_jax.backend import JaxBackend
from tunix_jax.models.gemma.layers import RMSNorm

TINY = ModelSpec("tiny-gemma3", "random")
QUESTION = "What is 2+2?"
NEW_TOKENS = 24


def expected_completion(model, system_prompt: str) -> str:
    return model.generate([render_prompt(QUESTION, system_prompt)], max_new_tokens=NEW_TOKENS)[0]


def test_generate_with_a_preset_prints_the_completion_and_its_parts(jax_invoke):
    result = jax_invoke("generate", "--model", "tiny-gemma3", "--weights", "random", QUESTION,
                   "--max-new-tokens", NEW_TOKENS)  # fmt: skip
    assert result.exit_code == 0, result.output
    completion = expected_completion(JaxBackend().load(TINY, progress=print), RunConfig().dataset.system_prompt)
    parsed = parse_completion(completion)
    # Random weights write no tags: the parts are reported missing.
    assert (parsed.reasoning, parsed.answer) == (None, None)
    assert result.stdout == (
        f"completion:\n{completion}\n\nreasoning: (none)\nanswer: (none)\n"
        f"format: {'; '.join(parsed.problems)}\n"
    )


def test_generate_names_a_bad_preset(jax_invoke):
    result = jax_invoke("generate", "--model", "tiny-gemma9", "--weights", "random", QUESTION)
    assert result.exit_code == 2
    assert result.output.startswith("Error: --model: unknown model preset 'tiny-gemma9'")


@pytest.mark.parametrize("characters", [2_000, 100_000])
def test_generate_refuses_a_question_past_the_context_of_the_real_model(jax_invoke, characters):
    """tiny-gemma3's context is 512 tokens: 2 kB silently generated and 100 kB asked the
    device for hundreds of GB before the check."""
    result = jax_invoke("generate", "--model", "tiny-gemma3", "--weights", "random",
                        "z " * (characters // 2), "--max-new-tokens", NEW_TOKENS)  # fmt: skip
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.splitlines()[-1:]
    assert line.startswith("Error: the question needs ") and line.endswith(
        f"tokens of prompt; with {NEW_TOKENS} new tokens it exceeds the model's context of 512 "
        "tokens; shorten it (or the system prompt), or lower --max-new-tokens"
    )
    assert "completion:" not in result.stdout


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A run directory whose model/ holds a tiny model unlike the random base (its norm
    scales are random), with a config of its own system prompt and answer length."""
    backend = JaxBackend()
    model = backend.load(ModelSpec("tiny-gemma3", "random", seed=7), progress=print)
    rng = np.random.default_rng(3)
    for _, module in nnx.iter_graph(model.transformer):
        if isinstance(module, RMSNorm):
            module.scale[...] = jnp.asarray(rng.normal(0, 0.5, module.scale[...].shape))
    run = RunDirectory.create(tmp_path_factory.mktemp("runs"), "tiny", model_id="tiny-gemma3@random",
                              dataset="dev-reasoning-v2", trainer="jax", config_path=None,
                              command=["tunix", "run"])  # fmt: skip
    config = unstructure_config(RunConfig())
    config["model"].update(preset="tiny-gemma3", weights="random")
    config["dataset"]["system_prompt"] = "Be brief."
    config["eval"]["max_new_tokens"] = NEW_TOKENS
    run.config_path.write_text(yaml.safe_dump(config))
    backend.export(model, run.model_dir)
    return run.path, expected_completion(model, "Be brief.")


def test_generate_with_a_run_answers_with_its_trained_model(jax_invoke, trained_run):
    path, completion = trained_run
    result = jax_invoke("generate", path, QUESTION, "--json")
    assert result.exit_code == 0, result.output
    parsed = parse_completion(completion)
    assert json.loads(result.stdout) == {"completion": completion, "reasoning": parsed.reasoning,
                                         "answer": parsed.answer, "format_ok": False}  # fmt: skip
    base = expected_completion(JaxBackend().load(TINY, progress=print), "Be brief.")
    assert completion != base  # so the answer came from the run's model


def test_generate_says_when_a_run_has_no_trained_model_yet(jax_invoke, tmp_path):
    run = RunDirectory.create(tmp_path, "fresh", model_id="tiny-gemma3@random", dataset="d",
                              trainer="jax", config_path=None, command=["tunix", "run"])  # fmt: skip
    run.config_path.write_text(yaml.safe_dump(unstructure_config(RunConfig())))
    result = jax_invoke("generate", run.path, QUESTION)
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: {run.path} has no trained model yet ({run.model_config_path} is missing); "
        f"finish its training with `tunix run --resume {run.path}`"
    )


def test_the_jax_model_streams():
    model = JaxBackend().load(TINY, progress=print)
    assert isinstance(model, StreamingModel)
    assert model.context_length == 512  # tiny-gemma3's max_seq_len
    assert model.count_tokens("ab") == 3  # <bos> and a byte each
    prompt = render_prompt(QUESTION, "")
    streamed = "".join(model.stream(prompt, max_new_tokens=NEW_TOKENS))
    assert streamed == model.generate([prompt], max_new_tokens=NEW_TOKENS)[0]


@pytest.fixture(scope="module")
def float32_run(tmp_path_factory):
    """A run directory holding the random tiny model with float32 matmuls pinned: its
    greedy answers run long on every machine (with the bf16 operands that
    ``matmul_dtype: auto`` picks on a CPU that has them, this model stops at once)."""
    backend = JaxBackend()
    spec = ModelSpec("tiny-gemma3", "random", options={"matmul_dtype": "float32"})
    run = RunDirectory.create(tmp_path_factory.mktemp("runs"), "tiny", model_id="tiny-gemma3@random",
                              dataset="dev-reasoning-v2", trainer="jax", config_path=None,
                              command=["tunix", "run"])  # fmt: skip
    config = unstructure_config(RunConfig())
    config["model"].update(preset="tiny-gemma3", weights="random", options=dict(spec.options))
    run.config_path.write_text(yaml.safe_dump(config))
    backend.export(backend.load(spec, progress=print), run.model_dir)
    return run.path


# pexpect forks a process that at once runs a new Python, so JAX's threads do not matter.
@pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")
def test_chat_in_a_terminal_streams_stops_on_ctrl_c_and_quits(float32_run):
    import pexpect  # only the tunix-eval test session installs it; others collect this file

    child = pexpect.spawn(
        sys.executable,
        ["-m", "tunix_core", "chat", str(float32_run), "--system-prompt", "",
         "--max-new-tokens", "450"],
        encoding="utf-8", timeout=300,
    )  # fmt: skip
    try:
        child.expect_exact(PROMPT)
        assert "(trained tiny-gemma3@random); it streams its answers" in child.before
        # A long answer (this model writes 450 tokens to it): interrupt it once it shows.
        child.sendline("Write a story.")
        child.expect_exact("Write a story.\r\n")
        child.expect(r"[^\r\n]")  # the first text of the answer, printed while it decodes
        child.sendintr()
        child.expect_exact(STOPPED)
        child.expect_exact(PROMPT)
        assert child.before == "\r\n"
        child.sendline(QUESTION)
        child.expect_exact(f"{QUESTION}\r\n")
        child.expect_exact(PROMPT)
        answer = child.before.removeprefix(
            "(dropped the 1 oldest exchange(s) to fit the model's context)\r\n"
        )
        assert answer.endswith("\r\n") and answer.strip()
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
