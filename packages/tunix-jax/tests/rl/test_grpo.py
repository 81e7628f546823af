"""GRPO: advantages, the objective against a hand-computed example, per-token
log-probabilities, and the ``grpo`` trainer on the tiny model (it learns a reward; KL 0
and ratio 1 at the start; exact resume after SIGKILL; config errors)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tunix_core.config import structure_config
from tunix_core.errors import ConfigError
from tunix_core.evidence import validate_file
from tunix_core.jsonio import read_jsonl
from tunix_core.plugins import PluginHost
from tunix_core.protocols import RunContext
from tunix_jax.backend import JaxBackend
from tunix_jax.rl.grpo.algorithm import (
    Objective,
    advantages_of,
    batch_advantages,
    build_rows,
    chunked_token_logprobs,
    group_advantages,
    objective_loss,
    overlong_penalty,
    per_reward_advantages,
    token_objective,
    uninformative_groups,
)
from tunix_jax.rl.grpo.trainer import GrpoTrainer, sample_seed

HERE = Path(__file__).parent
SCRIPT = HERE.parent / "train_script.py"
_spec = importlib.util.spec_from_file_location("train_script", SCRIPT)
assert _spec is not None and _spec.loader is not None
train_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(train_script)


def starts_with_digit(prompts, completions, expected, meta, *, context):
    return train_script.starts_with_digit(prompts, completions, expected, meta, context=context)


def ends_with_space(prompts, completions, expected, meta, *, context):
    """A second reward, NaN for the empty completion, for per-reward normalisation."""
    return [math.nan if not text else float(text.endswith(" ")) for text in completions]


def rewards_context() -> RunContext:
    """A run context whose host has only the rewards GRPO trains on here."""
    host = PluginHost()
    host.rewards.register("starts_with_digit", f"{__name__}:starts_with_digit")
    host.rewards.register("ends_with_space", f"{__name__}:ends_with_space")
    return RunContext(host)


def grpo_config(steps: int, **options) -> dict:
    return {
        "dataset": {"system_prompt": "Solve."},
        "model": {"preset": "tiny-gemma3", "weights": "random"},
        "training": {"steps": steps, "batch_size": 4, "max_seq_len": 64, "checkpoint_every": 2,
                     "learning_rate": 1e-2, "warmup_steps": 0, "schedule": "constant",
                     "lora": {"enabled": False}},
        "trainer": {"name": "grpo", "options": {
            "progress_bar": False, "num_generations": 8, "max_new_tokens": 4, "beta": 0.04,
            "rewards": {"starts_with_digit": 1.0}, **options}},
    }  # fmt: skip


def with_float32_matmuls(config: dict) -> dict:
    """`config` for a test that needs the first step's KL to be exactly 0: the step's policy
    log-probabilities and the reference's come from two programs, which round bfloat16
    operands (`matmul_dtype: auto` on a CPU with avx512_bf16) differently."""
    config["model"]["options"] = {"matmul_dtype": "float32"}
    return config


def train(run_path: Path, config: dict):
    trainer = GrpoTrainer()
    parsed = structure_config(config)
    context = rewards_context()
    trainer.validate(parsed, context=context)
    run = train_script.open_run(run_path)
    result = trainer.train(parsed, run, train_script.tiny_examples(16), backend=JaxBackend(),
                           context=context.within(run, lambda _: None))  # fmt: skip
    return run, result


def test_advantages_are_centred_per_group_and_scaled_by_the_group_std():
    rewards_ = np.array([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, math.nan, 2.0])
    scaled = group_advantages(rewards_, 4, scale=True)
    plain = group_advantages(rewards_, 4, scale=False)
    np.testing.assert_allclose(plain[:4], [0.75, -0.25, -0.25, -0.25])
    std = math.sqrt((0.75**2 + 3 * 0.25**2) / 4)
    np.testing.assert_allclose(scaled[:4], plain[:4] / (std + 1e-4), rtol=1e-6)
    # The NaN reward is left out of its group's mean (1.0) and gets advantage 0.
    np.testing.assert_allclose(plain[4:], [-0.5, -0.5, 0.0, 1.0])
    for advantages in (scaled, plain):
        np.testing.assert_allclose(advantages.reshape(2, 4).sum(axis=1), 0.0, atol=1e-5)
    # A group of equal rewards has nothing to learn from.
    np.testing.assert_array_equal(group_advantages(np.ones(4), 4, scale=True), 0.0)


def test_the_objective_and_its_gradient_match_a_hand_computed_example():
    logprobs = jnp.array([[-1.0, -2.0]])
    old = jnp.array([[-1.1, -2.0]])
    ref = jnp.array([[-1.0, -2.5]])
    advantages = jnp.array([2.0])
    mask = jnp.array([[1.0, 1.0]])
    clip = Objective(low=0.2, high=0.05, beta=0.1)

    def loss(lp):
        return token_objective(lp, old, ref, advantages, mask, clip)

    (value, sums), grad = jax.value_and_grad(loss, has_aux=True)(logprobs)
    # Token 0: ratio e^0.1 = 1.105 is clipped to 1.05 -> -2.1, KL 0 (ref == policy).
    # Token 1: ratio 1 -> -2; KL k3 = e^-0.5 + 0.5 - 1 = 0.10653, times beta 0.1.
    kl_1 = math.exp(-0.5) + 0.5 - 1
    assert float(value) == pytest.approx(-2.1 - 2.0 + 0.1 * kl_1, abs=1e-5)
    assert float(sums["clipped"]) == 1.0 and float(sums["tokens"]) == 2.0
    assert float(sums["kl"]) == pytest.approx(kl_1, abs=1e-6)
    # d/dlp: the clipped token passes no policy gradient and its KL gradient
    # 1 - e^(ref - lp) is 0; token 1: -A * ratio + beta * (1 - e^-0.5).
    np.testing.assert_allclose(grad, [[0.0, -2.0 + 0.1 * (1 - math.exp(-0.5))]], atol=1e-6)
    # A masked token counts for nothing.
    masked, _ = token_objective(logprobs, old, ref, advantages, jnp.array([[0.0, 1.0]]), clip)
    assert float(masked) == pytest.approx(-2.0 + 0.1 * kl_1, abs=1e-5)


# Two completions of 2 and 1 counted tokens (advantages 2 and -1), for the loss types.
LOGPROBS = jnp.array([[-1.0, -2.0], [-0.5, -3.0]])
OLD = jnp.array([[-1.1, -2.0], [-0.5, 0.0]])
REF = jnp.array([[-1.0, -2.5], [-0.5, 0.0]])
ADVANTAGES = jnp.array([2.0, -1.0])
MASK = jnp.array([[1.0, 1.0], [1.0, 0.0]])
KL_1 = math.exp(-0.5) + 0.5 - 1  # k3 of row 0's token 1
KL_GRAD_1 = 1 - math.exp(-0.5)  # its derivative in logp
S = math.exp(0.05)  # gspo: row 0's sequence ratio, exp of its mean token log-ratio 0.1 / 2
# Token level, row 0: token 0's ratio e^0.1 is clipped at 1.06 (-2 * 1.06, no gradient),
# token 1's is 1 (-2 + beta * KL); row 1: ratio 1 times -A = +1.
TOKEN_LOSSES = [-2.12, -2.0 + 0.1 * KL_1, 1.0]
TOKEN_GRADS = [0.0, -2.0 + 0.1 * KL_GRAD_1, 1.0]
EXPECTED = {
    # Mean over all 3 tokens.
    "dapo": (sum(TOKEN_LOSSES) / 3, [[0.0, TOKEN_GRADS[1] / 3], [1 / 3, 0.0]]),
    # Each completion's mean, then the mean over the 2 completions.
    "grpo": (((TOKEN_LOSSES[0] + TOKEN_LOSSES[1]) / 2 + 1.0) / 2,
             [[0.0, TOKEN_GRADS[1] / 4], [0.5, 0.0]]),
    # The sum over 2 completions x max_completion_tokens 4.
    "dr_grpo": (sum(TOKEN_LOSSES) / 8, [[0.0, TOKEN_GRADS[1] / 8], [1 / 8, 0.0]]),
    # Row 0's ratio S = 1.0513 is inside [0.8, 1.06]: -2 * S on both tokens, and d/dlogp_j
    # of -A * S is -A * S / 2 for each token j; the KL keeps its per-token mean.
    "gspo": (((-2 * S) + 0.1 * KL_1 / 2 + 1.0) / 2,
             [[-S / 2, (-S + 0.1 * KL_GRAD_1 / 2) / 2], [0.5, 0.0]]),
}  # fmt: skip


@pytest.mark.parametrize("loss_type", sorted(EXPECTED))
def test_each_loss_type_matches_a_hand_computed_value_and_gradient(loss_type):
    objective = Objective(low=0.2, high=0.06, beta=0.1, loss_type=loss_type,
                          max_completion_tokens=4)  # fmt: skip

    def loss(lp):
        return objective_loss(lp, OLD, REF, ADVANTAGES, MASK, objective)

    value, grad = jax.value_and_grad(loss)(LOGPROBS)
    want_value, want_grad = EXPECTED[loss_type]
    assert float(value) == pytest.approx(want_value, abs=1e-5)
    np.testing.assert_allclose(grad, want_grad, atol=1e-5)


def test_gspo_clips_the_sequence_ratio_not_the_token_ratios():
    # Token 0's ratio e^0.1 alone would be clipped at 1.06; the sequence's e^0.05 is not.
    _, token_sums = token_objective(LOGPROBS, OLD, REF, ADVANTAGES, MASK, Objective(0.2, 0.06, 0.0))
    assert float(token_sums["clipped"]) == 1.0
    _, gspo_sums = token_objective(LOGPROBS, OLD, REF, ADVANTAGES, MASK,
                                   Objective(0.2, 0.06, 0.0, loss_type="gspo"))  # fmt: skip
    assert float(gspo_sums["clipped"]) == 0.0
    assert float(gspo_sums["ratio"]) == pytest.approx(2 * S + 1.0, abs=1e-6)
    # With a tighter clip the whole of row 0 (both its tokens) is clipped.
    _, tight = token_objective(LOGPROBS, OLD, REF, ADVANTAGES, MASK,
                               Objective(0.2, 0.04, 0.0, loss_type="gspo"))  # fmt: skip
    assert float(tight["clipped"]) == 2.0


def test_an_unknown_loss_type_is_refused():
    with pytest.raises(ValueError, match="loss_type must be one of grpo, dr_grpo, dapo, gspo"):
        Objective(0.2, 0.2, 0.0, loss_type="ppo")


def test_batch_normalisation_centres_on_the_group_and_scales_by_the_batch_std():
    rewards_ = np.array([1.0, 0.0, 0.0, 0.0, 0.5, 0.5, math.nan, 2.0])
    valid = [1.0, 0.0, 0.0, 0.0, 0.5, 0.5, 2.0]
    mean = sum(valid) / 7
    std = math.sqrt(sum((v - mean) ** 2 for v in valid) / 7)
    centred = [0.75, -0.25, -0.25, -0.25, -0.5, -0.5, 0.0, 1.0]
    np.testing.assert_allclose(batch_advantages(rewards_, 4, scale=True),
                               np.array(centred) / (std + 1e-4), rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(batch_advantages(rewards_, 4, scale=False), centred, atol=1e-7)


def test_per_reward_normalisation_normalises_each_reward_in_its_group_then_sums():
    # "small" varies by 1, "large" by 10: normalised apart, neither drowns the other.
    small = np.array([0.0, 1.0, 0.0, 1.0])
    large = np.array([0.0, 0.0, 10.0, math.nan])
    got = per_reward_advantages({"small": small, "large": large}, {"small": 1.0, "large": 0.5},
                                4, scale=True)  # fmt: skip
    z_small = np.array([-0.5, 0.5, -0.5, 0.5]) / (0.5 + 1e-4)
    # large: mean and std of its 3 valid scores (10/3, sqrt(200/9)); the NaN gets 0.
    mean, std = 10 / 3, math.sqrt(((10 / 3) ** 2 * 2 + (20 / 3) ** 2) / 3)
    z_large = np.array([-mean, -mean, 10 - mean, 0.0]) / (std + 1e-4)
    np.testing.assert_allclose(got, z_small + 0.5 * z_large, rtol=1e-5)
    total = np.array([0.0, 1.0, 0.5, math.nan])
    by_reward = {"small": small, "large": large}
    weights = {"small": 1.0, "large": 0.5}
    summed = advantages_of(total, by_reward, weights, 4, normalization="per_reward_then_sum",
                           scale=True)  # fmt: skip
    # A completion whose combined reward is NaN (none applies) stays at 0.
    np.testing.assert_allclose(summed, [*got[:3], 0.0], rtol=1e-5)
    grouped = advantages_of(total, by_reward, weights, 4, normalization="group", scale=False)
    np.testing.assert_allclose(grouped, [-0.5, 0.5, 0.0, 0.0], atol=1e-7)


def test_groups_with_equal_rewards_are_uninformative():
    scores = np.array([[1.0], [1.0], [0.0], [1.0], [math.nan], [0.3], [math.nan], [math.nan]])
    np.testing.assert_array_equal(uninformative_groups(scores, 2), [True, False, True, True])
    # Per reward: a group is informative when any reward varies in it.
    two = np.array([[1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_array_equal(uninformative_groups(two, 2), [False])


def test_the_soft_overlong_punishment_ramps_down_over_its_interval():
    # max 16, interval 4: free up to 12 tokens, -1 from 16.
    np.testing.assert_allclose(overlong_penalty([10, 12, 14, 16, 20], 16, 4),
                               [0.0, 0.0, -0.5, -1.0, -1.0])  # fmt: skip


@pytest.mark.parametrize(
    ("chunk_tokens", "masked", "merge_rows"),
    [(1, False, False), (3, False, False), (64, False, False), (3, True, False), (4, True, True),
     (64, True, True)],
)  # fmt: skip
def test_chunked_logprobs_and_their_gradient_equal_the_full_log_softmax(
    chunk_tokens, masked, merge_rows
):
    keys = jax.random.split(jax.random.key(0), 3)
    hidden = jax.random.normal(keys[0], (2, 5, 8))
    table = jax.random.normal(keys[1], (11, 8))
    targets = jax.random.randint(keys[2], (2, 5), 0, 11)
    # Completions of 2 and 4 tokens, the second with a gap (a position left out of the loss).
    mask = jnp.asarray([[1, 1, 0, 0, 0], [1, 0, 1, 1, 0]], jnp.float32) if masked else None
    counted = jnp.ones((2, 5)) if mask is None else mask

    def logits_fn(h, t):
        return jnp.einsum("...d,vd->...v", h, t)

    def full(h, t):
        logprobs = jax.nn.log_softmax(logits_fn(h, t) / 0.7, axis=-1)
        return jnp.take_along_axis(logprobs, targets[..., None], axis=-1)[..., 0] * counted

    def chunked(h, t):
        return chunked_token_logprobs(h, t, targets, logits_fn, temperature=0.7,
                                      chunk_tokens=chunk_tokens, mask=mask,
                                      merge_rows=merge_rows)  # fmt: skip

    np.testing.assert_allclose(chunked(hidden, table), full(hidden, table), atol=1e-5)
    weights = jnp.arange(10.0).reshape(2, 5)
    grad_full = jax.grad(lambda h, t: jnp.sum(full(h, t) * weights), argnums=(0, 1))(hidden, table)
    grad_chunked = jax.grad(lambda h, t: jnp.sum(chunked(h, t) * weights), argnums=(0, 1))(
        hidden, table
    )
    for got, want in zip(grad_chunked, grad_full, strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_merged_rows_compute_only_the_chunks_with_a_counted_token():
    """8 completions of 8, 16, ..., 64 counted tokens in 64 positions, chunks of 64 tokens.
    Kept apart, a chunk is 8 positions of every row, and the longest row needs all 8
    chunks; merged, the 288 counted positions fill 5 chunks of 64."""
    hidden = jnp.ones((8, 64, 4))
    table = jnp.ones((16, 4))
    targets = jnp.zeros((8, 64), jnp.int32)
    mask = (jnp.arange(64)[None, :] < 8 * jnp.arange(1, 9)[:, None]).astype(jnp.float32)
    chunks = {}
    for merge_rows in (False, True):
        computed = []

        def logits_fn(h, t, computed=computed):
            jax.debug.callback(lambda: computed.append(1))
            return jnp.einsum("...d,vd->...v", h, t)

        logprobs = chunked_token_logprobs(hidden, table, targets, logits_fn, temperature=1.0,
                                          chunk_tokens=64, mask=mask, merge_rows=merge_rows)  # fmt: skip
        jax.block_until_ready(logprobs)
        jax.effects_barrier()
        chunks[merge_rows] = len(computed)
        # All 16 tokens equally likely: every counted position is log(1/16), the rest 0.
        np.testing.assert_allclose(logprobs, mask * -np.log(16.0), rtol=1e-6)
    assert chunks == {False: 8, True: 5}


def test_rows_predict_each_completion_token_from_the_position_before_it():
    rows = build_rows([[2, 5, 6], [2, 7]], [[8, 9], [10, 11, 1]], [True, False], pad_id=0,
                      length=6, completion_length=3)  # fmt: skip
    np.testing.assert_array_equal(rows["inputs"], [[2, 5, 6, 8, 9, 0], [2, 7, 10, 11, 1, 0]])
    np.testing.assert_array_equal(rows["gather"], [[2, 3, 0], [1, 2, 3]])
    np.testing.assert_array_equal(rows["targets"], [[8, 9, 0], [10, 11, 1]])
    np.testing.assert_array_equal(rows["mask"], [[1, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="row 0"):
        build_rows([[2] * 5], [[3] * 3], [True], pad_id=0, length=6, completion_length=3)


def test_grpo_token_logprobs_sum_to_the_backends_completion_score(tmp_path):
    """The trainer's batch layout scores a completion as the backend's ``score`` does."""
    from flax import nnx

    from tunix_core.protocols import ModelSpec
    from tunix_jax.rl.grpo.algorithm import completion_logprobs
    from tunix_jax.training.loop import model_logits_fn

    # float32 matmuls on every machine: the two paths are compared to f32 rounding.
    model = JaxBackend().load(
        ModelSpec("tiny-gemma3", "random", options={"matmul_dtype": "float32"}), progress=print
    )
    tokenizer = model.tokenizer
    prompts = ["<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "Q: 2+2?"]
    completions = ["<answer>4</answer>", "four, I think"]
    expected = model.score(prompts, completions)
    prompt_ids = [tokenizer.encode(p, add_bos=True) for p in prompts]
    completion_ids = [tokenizer.encode(c) for c in completions]
    rows = build_rows(prompt_ids, completion_ids, [True, True], pad_id=tokenizer.pad_id,
                      length=64, completion_length=32)  # fmt: skip
    batch = {k: jnp.asarray(v) for k, v in rows.items()}
    logprobs = nnx.jit(lambda m, b: completion_logprobs(m, b, model_logits_fn(m),
                                                        temperature=1.0, chunk_tokens=16))(
        model.transformer, batch)  # fmt: skip
    got = np.sum(np.asarray(logprobs) * rows["mask"], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_grpo_lifts_a_learnable_reward_from_at_most_0_1_to_at_least_0_9(tmp_path):
    run, result = train(tmp_path / "learn", with_float32_matmuls(grpo_config(12)))
    records = read_jsonl(run.metrics_path)
    assert [r["step"] for r in records] == list(range(1, 13))
    assert all(validate_file(run.metrics_path) == [] for _ in [0])
    assert records[0]["reward"] <= 0.1
    assert np.mean([r["reward"] for r in records[-3:]]) >= 0.9, [r["reward"] for r in records]
    first = records[0]
    # Full fine-tune, one update per batch: the sampling policy is the reference at step 1.
    assert first["kl"] == 0.0 and first["ratio"] == 1.0 and first["clip_fraction"] == 0.0
    for key in ("reward_std", "reward/starts_with_digit", "reward/starts_with_digit_std",
                "completion_tokens", "format_rate", "truncated_rate", "generate_seconds",
                "update_seconds", "grad_norm", "learning_rate"):  # fmt: skip
        assert key in first, key
    assert records[-1]["kl"] > 0.0  # the policy moved away from the reference
    assert result.steps == 12 and result.export is not None
    assert (run.model_dir / "model_config.json").is_file()
    assert (run.path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_with_lora_and_several_updates_the_first_kl_is_zero_and_the_ratio_moves(tmp_path):
    config = grpo_config(2, num_iterations=3, epsilon_high=0.01, epsilon_low=0.01)
    config["training"]["lora"] = {"enabled": True, "rank": 4, "alpha": 8.0}
    config["training"]["learning_rate"] = 5e-2
    run, _ = train(tmp_path / "lora", with_float32_matmuls(config))
    first = read_jsonl(run.metrics_path)[0]
    # The adapters start at zero update: the sampling policy is the reference exactly.
    assert first["kl"] == 0.0
    # Updates 2 and 3 reuse the samples: the ratio leaves 1 and the tight clip bites.
    assert first["ratio"] != 1.0 and first["clip_fraction"] > 0.0


def test_sampling_seeds_are_a_function_of_the_run_seed_and_step():
    assert sample_seed(0, 3) == sample_seed(0, 3) != sample_seed(0, 4) != sample_seed(1, 4)
    assert sample_seed(0, 3, refill=1) not in (sample_seed(0, 3), sample_seed(0, 4))


def test_dr_grpo_with_per_reward_normalisation_dynamic_sampling_and_overlong_shaping(tmp_path):
    config = grpo_config(2, loss_type="dr_grpo", reward_normalization="per_reward_then_sum",
                         dynamic_sampling=True, max_refills=2, overlong_interval=2,
                         rewards={"starts_with_digit": 1.0, "ends_with_space": 0.5})  # fmt: skip
    run, result = train(tmp_path / "variants", config)
    records = read_jsonl(run.metrics_path)
    assert result.steps == 2 and [r["step"] for r in records] == [1, 2]
    first, second = records
    assert all(math.isfinite(r["loss"]) for r in records)
    # Up to 4 tokens, punished from 2 on: every completion of 3 or more tokens is.
    assert -1.0 <= first["reward/overlong"] <= 0.0
    for key in ("reward/starts_with_digit_nan", "reward/ends_with_space_nan", "reward_nan",
                "hacking/empty_reasoning", "hacking/copied_reasoning", "hacking/answer_repeated",
                "hacking/duplicated_tags", "hacking/contradiction",
                "dynamic_sampling/refills", "dynamic_sampling/dropped_groups",
                "dynamic_sampling/filler_groups"):  # fmt: skip
        assert key in first, key
    # The untrained model rarely starts with a digit: most groups are all 0, dropped and
    # refilled; groups still missing after 2 refills are fillers, left out of the loss.
    assert first["dynamic_sampling/dropped_groups"] > 0
    assert first["counted_rate"] == pytest.approx(1 - first["dynamic_sampling/filler_groups"] / 4)
    # The empty completions' NaN is counted, and left out (the other reward applies).
    assert first["reward/ends_with_space_nan"] > 0 and first["reward_nan"] == 0
    # Random 4-token completions have no reasoning block.
    assert first["hacking/empty_reasoning"] == 1.0
    # Length inflation compares with the previous step: from the second step on.
    assert "hacking/length_inflation" not in first and "hacking/length_inflation" in second
    print(json.dumps(first, indent=1, sort_keys=True))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"rewards": {"no_such_reward": 1.0}}, "trainer.options.rewards"),
        # Near the largest float, two weights sum to inf and a perfect reward to NaN.
        (
            {"rewards": {"starts_with_digit": 1e308}},
            "trainer.options.rewards: reward "
            "'starts_with_digit': weight must be a positive number up to 1e",
        ),
        ({"max_new_tokens": 64}, "trainer.options.max_new_tokens"),
        ({"num_generations": 1}, "trainer.options.num_generations"),
        ({"epsilon_high": 1.5}, "trainer.options.epsilon_high"),
        ({"loss_type": "ppo"}, "trainer.options.loss_type"),
        ({"reward_normalization": "sum"}, "trainer.options.reward_normalization"),
        ({"overlong_interval": 4}, "trainer.options.overlong_interval"),
        ({"overlong_interval": 2, "rewards": {"overlong": 1.0}}, "trainer.options.rewards"),
        (
            {"reward_options": {"starts_with_digit": {"x": 1}}},
            "trainer.options.reward_options.starts_with_digit",
        ),
    ],
)
def test_validate_names_the_config_field(options, field):
    trainer = GrpoTrainer()
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        trainer.validate(structure_config(grpo_config(1, **options)), context=rewards_context())


def test_gradient_accumulation_leaves_the_update_unchanged():
    """One step over 4 completions equals one over 2 micro-batches of 2: the loss is
    divided once by the step's completion tokens."""
    import optax
    from flax import nnx

    from tunix_core.protocols import ModelSpec
    from tunix_jax.rl.grpo.algorithm import make_grpo_step
    from tunix_jax.training.loop import model_logits_fn

    # float32 matmuls on every machine: the two paths are compared to f32 rounding.
    model = JaxBackend().load(
        ModelSpec("tiny-gemma3", "random", options={"matmul_dtype": "float32"}), progress=print
    )
    graphdef, params_state, frozen = nnx.split(model.transformer, nnx.Param, ...)
    template = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params_state)
    params = nnx.to_pure_dict(params_state)
    tx = optax.sgd(0.1)
    rows = build_rows([[2, 5, 6], [2, 7], [2, 9, 9, 9], [2, 4]],
                      [[8, 9, 1], [10], [11, 12], [13, 14, 15, 1]], [True] * 4,
                      pad_id=0, length=12, completion_length=5)  # fmt: skip
    rows["advantages"] = np.array([1.0, -1.0, 0.5, -0.5], np.float32)
    shape = rows["targets"].shape
    rows["old_logprobs"] = np.zeros(shape, np.float32)
    rows["ref_logprobs"] = np.full(shape, -3.0, np.float32)
    step = jax.jit(make_grpo_step(graphdef, template, tx, model_logits_fn, Objective(0.2, 0.2, 0.1),
                                  temperature=1.0, chunk_tokens=4, on_policy=True))  # fmt: skip

    def run(accum: int):
        batches = {k: jnp.asarray(v.reshape(accum, -1, *v.shape[1:])) for k, v in rows.items()}
        new_params, _, metrics = step(params, tx.init(params), frozen, batches)
        return new_params, metrics

    whole, whole_metrics = run(1)
    split, split_metrics = run(2)
    assert float(whole_metrics["tokens"]) == 10.0 == float(split_metrics["tokens"])
    # The two paths sum the same ten token losses in another order: a few float32 ulps
    # apart (3.8e-6 of 5.81 on a Zen 3 CPU's kernels), where a wrong divisor is 2x off.
    assert float(whole_metrics["loss"]) == pytest.approx(float(split_metrics["loss"]), rel=1e-5)
    # The updates agree to float32 rounding of the summed gradients (up to 1.5e-6 of the
    # parameters on a Zen 3 CPU); a divisor per micro-batch would change them by far more.
    for got, want, before in zip(jax.tree.leaves(split), jax.tree.leaves(whole),
                                 jax.tree.leaves(params), strict=True):  # fmt: skip
        np.testing.assert_allclose(got - before, want - before, rtol=1e-3, atol=1e-5)


def test_row_shapes_fit_the_longest_row_in_a_few_rounded_sizes():
    from tunix_jax.rl.grpo.trainer import row_shape

    # 100 + 40 tokens need 139 inputs -> 192; 40 completion tokens -> 64.
    assert row_shape([[1] * 100, [1] * 10], [[2] * 40, [2] * 3], 352, 160) == (192, 64)
    # Capped by the configuration: max_seq_len and max_new_tokens + 1.
    assert row_shape([[1] * 150], [[2] * 161], 300, 160) == (300, 161)
    assert row_shape([[1] * 5], [[]], 352, 160) == (64, 32)
