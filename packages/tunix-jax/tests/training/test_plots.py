from tunix_core.jsonio import append_jsonl
from tunix_jax.training.plots import plot_loss_curve


def test_loss_curve_png(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    assert not plot_loss_curve(metrics, tmp_path / "loss.png")
    append_jsonl(metrics, [{"step": s, "loss": 3.0 / s, "learning_rate": 1e-3, "elapsed_seconds": s}
                           for s in range(1, 6)])  # fmt: skip
    assert plot_loss_curve(metrics, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_a_grpo_run_s_plot_adds_a_reward_panel(tmp_path):
    from PIL import Image

    metrics = tmp_path / "metrics.jsonl"
    append_jsonl(metrics, [{"step": s, "loss": 0.1, "learning_rate": 1e-5, "elapsed_seconds": s,
                            "reward": s / 5, "reward_std": 0.1} for s in range(1, 6)])  # fmt: skip
    assert plot_loss_curve(metrics, tmp_path / "grpo.png")
    append_jsonl(tmp_path / "sft.jsonl", [{"step": 1, "loss": 1.0, "learning_rate": 1e-3,
                                           "elapsed_seconds": 1}])  # fmt: skip
    assert plot_loss_curve(tmp_path / "sft.jsonl", tmp_path / "sft.png")
    # The reward panel sits below the loss: the figure is taller.
    assert Image.open(tmp_path / "grpo.png").height > Image.open(tmp_path / "sft.png").height
