"""Preference optimisation: DPO, SimPO and ORPO against hand-computed examples (values
and gradients), the pairs file and its errors, and the trainers on the tiny model (a
planted preference learnt, LoRA with the base as DPO's reference, exact resume, the
time budget, config errors)."""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunix_core.config import structure_config
from tunix_core.data.render import render_prompt, render_reasoning_completion
from tunix_core.errors import ConfigError, DataError
from tunix_core.evidence import validate_file
from tunix_core.jsonio import read_jsonl
from tunix_core.plugins import PluginHost
from tunix_core.protocols import RunContext
from tunix_jax.backend import JaxBackend
from tunix_jax.rl.preference.data import load_pairs
from tunix_jax.rl.preference.losses import (
    PairLoss,
    dpo_loss,
    orpo_loss,
    preference_accuracy,
    simpo_loss,
)
from tunix_jax.rl.preference.trainer import DpoTrainer, OrpoTrainer, SimpoTrainer, pair_rows

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("train_script", HERE.parent / "train_script.py")
assert _spec is not None and _spec.loader is not None
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)

TRAINERS = {"dpo": DpoTrainer, "simpo": SimpoTrainer, "orpo": OrpoTrainer}


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- the losses, by hand ------------------------------------------------------------


def _value_and_grads(fn, *args):
    """(losses, chosen rewards, rejected rewards) and d loss / d each argument, for one pair."""
    arrays = [jnp.array([a], jnp.float32) for a in args]
    loss = fn(*arrays)
    grads = jax.grad(lambda *xs: jnp.sum(fn(*xs).losses), argnums=tuple(range(len(args))))(*arrays)
    return loss, [float(g[0]) for g in grads]


def test_dpo_matches_a_hand_computed_example():
    # log pi(y_w) = -1, log pi(y_l) = -3, the reference gives both -2, beta 0.5:
    # r_w = 0.5 * (-1 + 2) = 0.5, r_l = 0.5 * (-3 + 2) = -0.5, z = 1.
    loss, grads = _value_and_grads(lambda c, r, rc, rr: dpo_loss(c, r, rc, rr, beta=0.5),
                                   -1.0, -3.0, -2.0, -2.0)  # fmt: skip
    assert float(loss.losses[0]) == pytest.approx(math.log(1 + math.exp(-1)), abs=1e-6)
    assert float(loss.losses[0]) == pytest.approx(0.3132617, abs=1e-6)
    assert float(loss.chosen_rewards[0]) == 0.5 and float(loss.rejected_rewards[0]) == -0.5
    # d/d log pi(y_w) = -beta * sigmoid(-z) = -0.5 * 0.268941; the opposite for y_l; the
    # reference gets no gradient.
    assert grads == pytest.approx([-0.5 * sigmoid(-1), 0.5 * sigmoid(-1), 0.0, 0.0], abs=1e-6)
    assert grads[0] == pytest.approx(-0.1344707, abs=1e-6)


def test_simpo_matches_a_hand_computed_example():
    # y_w: -4 over 2 tokens, y_l: -9 over 3 tokens, beta 2, gamma 1:
    # r_w = 2 * -2 = -4, r_l = 2 * -3 = -6, z = -4 + 6 - 1 = 1.
    loss, grads = _value_and_grads(
        lambda c, r, nc, nr: simpo_loss(c, r, nc, nr, beta=2.0, gamma=1.0), -4.0, -9.0, 2.0, 3.0
    )
    assert float(loss.losses[0]) == pytest.approx(0.3132617, abs=1e-6)
    assert float(loss.chosen_rewards[0]) == -4.0 and float(loss.rejected_rewards[0]) == -6.0
    # d/d log pi(y_w) = -sigmoid(-z) * beta / |y_w|; d/d log pi(y_l) = +sigmoid(-z) * beta / |y_l|.
    assert grads[:2] == pytest.approx([-sigmoid(-1) * 2 / 2, sigmoid(-1) * 2 / 3], abs=1e-6)
    assert grads[:2] == pytest.approx([-0.2689414, 0.1792943], abs=1e-6)
    # A larger target margin gamma costs more.
    wider = simpo_loss(jnp.array([-4.0]), jnp.array([-9.0]), jnp.array([2.0]), jnp.array([3.0]),
                       beta=2.0, gamma=2.0)  # fmt: skip
    assert float(wider.losses[0]) == pytest.approx(math.log(1 + math.exp(0)), abs=1e-6)


def test_orpo_matches_a_hand_computed_example():
    # y_w: -2 over 4 tokens (mean m_w = -0.5), y_l: -3 over 2 tokens (m_l = -1.5), lambda 0.1.
    # log odds(m) = m - log(1 - e^m): 0.432752 and -1.247518; d = 1.680270.
    loss, grads = _value_and_grads(
        lambda c, r, nc, nr: orpo_loss(c, r, nc, nr, weight=0.1), -2.0, -3.0, 4.0, 2.0
    )
    odds_w = -0.5 - math.log(1 - math.exp(-0.5))
    odds_l = -1.5 - math.log(1 - math.exp(-1.5))
    assert (odds_w, odds_l) == pytest.approx((0.432752, -1.247518), abs=1e-6)
    d = odds_w - odds_l
    # NLL 0.5 plus 0.1 * -log sigmoid(d) = 0.1 * 0.170851.
    assert float(loss.losses[0]) == pytest.approx(0.5 + 0.1 * math.log(1 + math.exp(-d)), abs=1e-6)
    assert float(loss.losses[0]) == pytest.approx(0.5170859, abs=1e-6)
    assert float(loss.chosen_rewards[0]) == pytest.approx(-0.05)
    assert float(loss.rejected_rewards[0]) == pytest.approx(-0.15)
    # d log odds / dm = 1 / (1 - e^m); dm / d log pi = 1 / |y|.
    want_chosen = (-1 - 0.1 * sigmoid(-d) / (1 - math.exp(-0.5))) / 4
    want_rejected = 0.1 * sigmoid(-d) / (1 - math.exp(-1.5)) / 2
    assert grads[:2] == pytest.approx([want_chosen, want_rejected], abs=1e-6)
    assert grads[:2] == pytest.approx([-0.2599792, 0.0101085], abs=1e-6)


def test_preference_accuracy_counts_a_tie_as_half():
    loss = PairLoss(jnp.zeros(3), jnp.array([1.0, 0.0, -1.0]), jnp.array([0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(preference_accuracy(loss), [1.0, 0.5, 0.0])


def test_pair_rows_put_each_chosen_completion_before_its_rejected_one():
    from tunix_jax.rl.preference.trainer import TokenizedPair

    rows = pair_rows([TokenizedPair([2, 5], [8, 9], [7])], pad_id=0, length=4, completion_length=2)
    np.testing.assert_array_equal(rows["inputs"], [[2, 5, 8, 9], [2, 5, 7, 0]])
    np.testing.assert_array_equal(rows["targets"], [[8, 9], [7, 0]])
    # The prompt is never a target: the loss sees the model turn only.
    np.testing.assert_array_equal(rows["mask"], [[1, 1], [1, 0]])


# --- the pairs file -------------------------------------------------------------------


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_pairs_render_chat_messages_and_tagged_text_in_the_competition_format(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": [{"role": "system", "content": "ignored"}, {"role": "user", "content": "2+2?"}],
         "chosen": [{"role": "assistant", "content": "<reasoning>2+2=4</reasoning>\n<answer> 4 </answer>"}],
         "rejected": [{"role": "assistant", "content": "5"}], "score": 3},
        {"prompt": "3+3?", "chosen": "<reasoning>3+3=6</reasoning><answer>6</answer><end_of_turn>",
         "rejected": "<reasoning>3+3=7<answer>7</answer>"},
    ])  # fmt: skip
    first, second = load_pairs(str(path), "Solve.")
    assert first.location == f"{path}:1"
    assert first.prompt == render_prompt("2+2?", "Solve.")
    assert first.chosen == render_reasoning_completion("2+2=4", "4")
    assert first.rejected == "5<end_of_turn>"
    assert second.chosen == render_reasoning_completion("3+3=6", "6")
    # A broken format is kept as written: it is what the model should learn to avoid.
    assert second.rejected == "<reasoning>3+3=7<answer>7</answer><end_of_turn>"
    assert load_pairs(f"jsonl:{path}", "Solve.") == [first, second]


@pytest.mark.heavy  # the heavy session installs `datasets` (tunix-datasets[hf]); the default one does not
def test_pairs_load_from_local_hugging_face_data(tmp_path):
    import datasets
    folder = tmp_path / "hf"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(
        [{"prompt": "1+1?", "chosen": "2", "rejected": "3"}])}).save_to_disk(str(folder))  # fmt: skip
    (pair,) = load_pairs(f"hf:{folder}", "")
    assert pair.location == f"{folder}[train] row 1"
    assert (pair.prompt, pair.chosen) == (render_prompt("1+1?", ""), "2<end_of_turn>")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"prompt": "q", "chosen": "a"}, "field 'rejected': is required"),
        ({"prompt": "q", "rejected": "a"}, "field 'chosen': is required"),
        ({"prompt": "q", "chosen": "<reasoning>r</reasoning><answer>a</answer>",
          "rejected": " <reasoning>r</reasoning>\n<answer>a</answer><end_of_turn>"},
         "field 'rejected': is the same completion as chosen"),
        ({"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
          "chosen": "a", "rejected": "b"}, "field 'prompt'"),
        ({"prompt": "q", "chosen": 4, "rejected": "b"}, "field 'chosen': must be text"),
    ],
)  # fmt: skip
def test_a_bad_record_is_one_line_naming_file_and_line(tmp_path, record, message):
    good = {"prompt": "q", "chosen": "a", "rejected": "b"}
    path = write_jsonl(tmp_path / "pairs.jsonl", [good, record])
    with pytest.raises(DataError) as caught:
        load_pairs(str(path), "Solve.")
    text = str(caught.value)
    assert text.startswith(f"{path}:2: ") and message in text and "\n" not in text


# --- the trainers on the tiny model ---------------------------------------------------


def planted_pairs(path: Path, count: int = 16) -> Path:
    """Pairs whose chosen answer is a number and rejected answer a word: a preference
    a tiny random model has no reason to hold (about half its margins are positive)."""
    words = ["seven", "many", "none", "lots"]
    records = []
    for i in range(count):
        a, b = i % 5, i // 5
        reasoning = f"{a} + {b} = {a + b}"
        records.append({
            "prompt": f"What is {a} + {b}?",
            "chosen": f"<reasoning>{reasoning}</reasoning><answer>{a + b}</answer>",
            "rejected": f"<reasoning>{reasoning}</reasoning><answer>{words[i % 4]}</answer>",
        })  # fmt: skip
    return write_jsonl(path, records)


def pref_config(trainer: str, steps: int, pairs: Path, *, lora: bool = False, **options) -> dict:
    return {
        "dataset": {"system_prompt": "Solve."},
        "model": {"preset": "tiny-gemma3", "weights": "random"},
        "training": {"steps": steps, "batch_size": 4, "max_seq_len": 96, "checkpoint_every": 100,
                     "learning_rate": 1e-2, "warmup_steps": 0, "schedule": "constant",
                     "lora": {"enabled": lora, "rank": 4, "alpha": 8.0}},
        "trainer": {"name": trainer, "options": {"progress_bar": False, "async_checkpoints": False,
                                                 "pairs": str(pairs), **options}},
    }  # fmt: skip


def train(run_path: Path, config: dict):
    parsed = structure_config(config)
    trainer = TRAINERS[parsed.trainer.name]()
    context = RunContext(PluginHost())
    trainer.validate(parsed, context=context)
    run = train_script.open_run(run_path)
    messages: list[str] = []
    result = trainer.train(parsed, run, train_script.tiny_examples(4), backend=JaxBackend(),
                           context=context.within(run, messages.append))  # fmt: skip
    return run, result, messages


def test_dpo_learns_a_planted_preference(tmp_path):
    """Preference accuracy from 0.5 to >= 0.95 in a few steps (docs/rl.md gives the
    time this test takes on a CPU)."""
    config = pref_config("dpo", 4, planted_pairs(tmp_path / "p.jsonl"), beta=0.5)
    run, result, _ = train(tmp_path / "learn", config)
    records = read_jsonl(run.metrics_path)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert validate_file(run.metrics_path) == []
    # Step 1: the policy is the reference, every margin is 0, a tie.
    first = records[0]
    assert first["accuracy"] == 0.5 and first["margin"] == 0.0
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-5)
    accuracies = [r["accuracy"] for r in records]
    assert min(accuracies[-2:]) >= 0.95, accuracies
    last = records[-1]
    assert last["margin"] > 0 and last["chosen_reward"] > last["rejected_reward"]
    assert last["loss"] < first["loss"]
    for key in ("chosen_reward", "rejected_reward", "chosen_logps", "rejected_logps", "grad_norm"):
        assert key in first, key
    assert result.steps == 4 and result.export is not None
    assert (run.model_dir / "model_config.json").is_file()


@pytest.mark.parametrize("trainer", ["simpo", "orpo"])
def test_simpo_and_orpo_learn_a_planted_preference_with_lora(tmp_path, trainer):
    config = pref_config(trainer, 6, planted_pairs(tmp_path / "p.jsonl"), lora=True)
    config["training"]["learning_rate"] = 5e-2
    run, result, _ = train(tmp_path / trainer, config)
    records = read_jsonl(run.metrics_path)
    accuracies = [r["accuracy"] for r in records]
    assert 0.25 <= accuracies[0] <= 0.75, accuracies  # a random model holds no preference
    assert min(accuracies[-2:]) >= 0.95, accuracies
    assert result.export is not None and (run.model_dir / "adapters").is_dir()


def test_dpo_with_lora_starts_at_the_base_and_resumes_exactly(tmp_path):
    """With LoRA the reference is the base model with the adapters off, so step 1 is a
    tie; a run stopped after 2 steps and resumed to 4 ends where a 4-step run ends."""
    pairs = planted_pairs(tmp_path / "p.jsonl")
    whole, _, _ = train(tmp_path / "whole", pref_config("dpo", 4, pairs, lora=True))
    train(tmp_path / "split", pref_config("dpo", 2, pairs, lora=True))
    split, result, messages = train(tmp_path / "split", pref_config("dpo", 4, pairs, lora=True))
    assert "[train] resumed from the checkpoint of step 2" in messages
    assert result.steps == 4
    first = read_jsonl(whole.metrics_path)[0]
    assert first["accuracy"] == 0.5 and first["margin"] == 0.0
    whole_records, split_records = read_jsonl(whole.metrics_path), read_jsonl(split.metrics_path)
    assert [r["step"] for r in split_records] == [1, 2, 3, 4]
    for key in ("loss", "margin", "accuracy", "grad_norm"):
        assert [r[key] for r in split_records] == [r[key] for r in whole_records], key
    from tunix_jax.weights.orbax_io import read_tree

    want = read_tree(whole.checkpoints_dir / "4" / "state", subtree="params")
    got = read_tree(split.checkpoints_dir / "4" / "state", subtree="params")
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


class JumpingClock:
    """The loop's clock: real time until the budget's third look, then 10,000 s later."""

    def __init__(self) -> None:
        self.looks = 0
        self.monotonic = time.monotonic

    def time(self) -> float:
        self.looks += 1
        return time.time() + (10_000.0 if self.looks > 3 else 0.0)


def test_the_time_budget_stops_with_a_checkpoint_and_a_model(tmp_path, monkeypatch):
    from tunix_jax.training import loop

    monkeypatch.setattr(loop, "time", JumpingClock())
    # The LoRA ORPO test's configuration (but the steps): its compiled step is reused.
    config = pref_config("orpo", 10, planted_pairs(tmp_path / "p.jsonl"), lora=True)
    config["training"]["learning_rate"] = 5e-2
    config["training"]["time_budget"] = "2h"
    run, result, messages = train(tmp_path / "budget", config)
    assert result.stopped_early and "time budget" in result.reason and result.steps < 10
    assert any("time budget" in m for m in messages)
    assert (run.checkpoints_dir / str(result.steps)).is_dir() and (
        run.model_dir / "params"
    ).is_dir()


@pytest.mark.parametrize(
    ("trainer", "options", "field"),
    [
        ("dpo", {"gamma": 1.0}, "trainer.options.gamma"),
        ("simpo", {"beta": 0.0}, "trainer.options.beta"),
        ("orpo", {"odds_ratio_weight": -1.0}, "trainer.options.odds_ratio_weight"),
        ("dpo", {"pairs_file": None}, "trainer.options.pairs"),
    ],
)
def test_validate_names_the_config_field(tmp_path, trainer, options, field):
    config = pref_config(trainer, 1, planted_pairs(tmp_path / "p.jsonl"), **options)
    if "pairs_file" in options:  # no pairs at all
        del config["trainer"]["options"]["pairs"], config["trainer"]["options"]["pairs_file"]
    with pytest.raises(ConfigError) as caught:
        TRAINERS[trainer]().validate(structure_config(config), context=RunContext(PluginHost()))
    # The configuration's errors: one line per bad field, naming it.
    (line,) = [line for line in str(caught.value).splitlines() if field in line]
    assert line.strip().startswith(f"{field}:"), line


def test_validate_refuses_a_bad_pairs_file_before_training(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "a"}])
    with pytest.raises(DataError, match=rf"^{path}:1: field 'rejected': is the same"):
        DpoTrainer().validate(structure_config(pref_config("dpo", 1, path)),
                              context=RunContext(PluginHost()))  # fmt: skip


def test_gradient_accumulation_leaves_the_update_unchanged():
    """One step over 4 pairs equals one over 2 micro-batches of 2: the loss is summed
    over pairs and divided once by their number."""
    import optax
    from flax import nnx

    from tunix_core.protocols import ModelSpec
    from tunix_jax.rl.preference.trainer import TokenizedPair, make_preference_step
    from tunix_jax.training.loop import model_logits_fn

    # float32 matmuls on every machine: the two paths are compared to f32 rounding.
    model = JaxBackend().load(
        ModelSpec("tiny-gemma3", "random", options={"matmul_dtype": "float32"}), progress=print
    )
    graphdef, params_state, frozen = nnx.split(model.transformer, nnx.Param, ...)
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params_state)
    params = nnx.to_pure_dict(params_state)
    tx = optax.sgd(0.1)
    pairs = [
        TokenizedPair([2, 5, 6], [8, 9, 1], [10]),
        TokenizedPair([2, 7], [11, 12], [13, 14, 15, 1]),
        TokenizedPair([2, 9, 9], [4], [5, 6]),
        TokenizedPair([2, 3], [7, 7, 7], [8, 1]),
    ]
    rows = pair_rows(pairs, pad_id=0, length=8, completion_length=4)
    rows["ref_logprobs"] = np.linspace(-9.0, -2.0, 8).astype(np.float32)

    def loss(s):
        return dpo_loss(s.chosen_logps, s.rejected_logps, s.ref_chosen_logps,
                        s.ref_rejected_logps, beta=0.3)  # fmt: skip

    step = jax.jit(make_preference_step(graphdef, template, tx, model_logits_fn, loss,
                                        chunk_tokens=4))  # fmt: skip

    def run(accum: int):
        batches = {k: jnp.asarray(v.reshape(accum, -1, *v.shape[1:])) for k, v in rows.items()}
        return step(params, tx.init(params), frozen, batches)

    whole, _, whole_metrics = run(1)
    split, _, split_metrics = run(2)
    for key in ("loss", "accuracy", "chosen_reward", "rejected_reward", "tokens"):
        assert float(whole_metrics[key]) == pytest.approx(float(split_metrics[key]), abs=1e-6), key
    assert float(whole_metrics["tokens"]) == 3 + 1 + 2 + 4 + 1 + 2 + 3 + 2
    for got, want in zip(jax.tree.leaves(split), jax.tree.leaves(whole), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-6)
