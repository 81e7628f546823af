"""The loss curve of a run as a PNG, drawn on a bare matplotlib Figure with the Agg canvas:
no pyplot, so a notebook kernel that runs `tunix_core.api.run` keeps its own backend."""

from __future__ import annotations

from pathlib import Path

from tunix_core.jsonio import read_jsonl


def plot_loss_curve(metrics_path: Path, png_path: Path, *, title: str = "training loss") -> bool:
    """Plot loss (and learning rate on a second axis) against step; returns False when
    there is nothing to plot."""
    if not metrics_path.exists():
        return False
    records = [r for r in read_jsonl(metrics_path) if "loss" in r and "step" in r]
    if not records:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in records]
    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    loss_axis = figure.subplots()
    loss_axis.plot(steps, [r["loss"] for r in records], color="tab:blue", label="loss")
    loss_axis.set_xlabel("step")
    loss_axis.set_ylabel("loss (nats per completion token)")
    loss_axis.set_title(title)
    loss_axis.grid(alpha=0.3)
    rate_axis = loss_axis.twinx()
    rate_axis.plot(steps, [r["learning_rate"] for r in records], color="tab:orange", alpha=0.6)
    rate_axis.set_ylabel("learning rate", color="tab:orange")
    figure.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path)
    return True
