from tunix_core.jsonio import append_jsonl
from tunix_jax.train.plots import plot_loss_curve


def test_loss_curve_png(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    assert not plot_loss_curve(metrics, tmp_path / "loss.png")
    append_jsonl(metrics, [{"step": s, "loss": 3.0 / s, "learning_rate": 1e-3, "elapsed_seconds": s}
                           for s in range(1, 6)])  # fmt: skip
    assert plot_loss_curve(metrics, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
