"""Two plugin hosts in one process, each with a plugin of its own, each driving a tiny run
(GRPO on one, SFT on the other): every run fires only its own host's plugins, and no code
path reaches the process-wide host."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tunix_core import api
from tunix_core.hookspecs import hookimpl
from tunix_core.plugins import PluginHost, get_host, plugin_module
from tunix_core.protocols import RewardRegistry, RunContext
from tunix_core.rundir import RunDirectory

# (host, what) for each call of a plugin, in order.
CALLS: list[tuple[str, str]] = []


def marked_reward(
    prompts: Sequence[str],
    completions: Sequence[str],
    expected: Sequence[str],
    meta: Sequence[Mapping[str, Any]],
    *,
    context: RunContext,
) -> list[float]:
    owner = "a" if "mark_a" in context.rewards else "b"
    CALLS.append((owner, "reward"))
    return [float(len(text) % 2) for text in completions]


def host_with_own_plugin(name: str) -> PluginHost:
    """Every installed plugin plus one that records its step hooks and owns a reward."""

    @hookimpl
    def tunix_train_step_end(step: int, metrics: dict[str, float], run: RunDirectory) -> None:
        CALLS.append((name, "step"))

    @hookimpl
    def tunix_register_rewards(registry: RewardRegistry) -> None:
        registry.register(f"mark_{name}", f"{__name__}:marked_reward")

    host = PluginHost()
    host.load_entry_points()
    plugin = plugin_module(f"own-{name}", tunix_train_step_end=tunix_train_step_end,
                           tunix_register_rewards=tunix_register_rewards)  # fmt: skip
    host.add_plugin(plugin, f"own-{name}", f"tunix-test-{name}")
    host.fill_registries()
    return host


def tiny(root: Path, trainer: str, steps: int, **options: Any) -> dict[str, Any]:
    return {
        "run": {"output_dir": str(root)},
        "dataset": {"name": "dev-reasoning-v2", "train_limit": 4, "eval_limit": 2},
        "model": {"preset": "tiny-gemma3", "weights": "random"},
        "trainer": {"name": trainer, "options": {"progress_bar": False, **options}},
        "training": {"steps": steps, "batch_size": 2, "max_seq_len": 256},
        "eval": {"baseline": False, "max_new_tokens": 4},
        "package": {"enabled": False},
    }


def test_each_run_fires_only_its_own_hosts_plugins(tmp_path: Path) -> None:
    get_host.cache_clear()
    first, second = host_with_own_plugin("a"), host_with_own_plugin("b")
    assert "mark_b" not in first.rewards and "mark_a" not in second.rewards

    grpo = tiny(tmp_path / "a", "grpo", 1, num_generations=2, max_new_tokens=4,
                rewards={"mark_a": 1.0})  # fmt: skip
    api.run(grpo, host=first, echo=lambda _line: None)
    assert CALLS and {owner for owner, _ in CALLS} == {"a"}
    assert sorted(set(CALLS)) == [("a", "reward"), ("a", "step")]

    CALLS.clear()
    api.run(tiny(tmp_path / "b", "jax", 2), host=second, echo=lambda _line: None)
    assert CALLS == [("b", "step"), ("b", "step")]
    assert get_host.cache_info().currsize == 0  # nothing reached the process-wide host
