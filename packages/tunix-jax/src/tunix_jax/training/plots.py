"""The loss curve of a run as a PNG, drawn on a bare matplotlib Figure with the Agg canvas:
no pyplot, so a notebook kernel that runs `tunix_core.api.run` keeps its own backend."""

from __future__ import annotations

from pathlib import Path

from tunix_core.jsonio import read_jsonl


def plot_loss_curve(metrics_path: Path, png_path: Path, *, title: str = "training loss") -> bool:
    """Plot loss (and learning rate on a second axis) against step, and below it the mean
    reward with its std band when the steps logged one (GRPO); returns False when there is
    nothing to plot."""
    if not metrics_path.exists():
        return False
    records = [r for r in read_jsonl(metrics_path) if "loss" in r and "step" in r]
    if not records:
        return False
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    steps = [r["step"] for r in records]
    rewarded = [r for r in records if "reward" in r]
    figure = Figure(figsize=(7, 6.5 if rewarded else 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(2 if rewarded else 1, 1, sharex=True, squeeze=False)[:, 0]
    loss_axis = axes[0]
    loss_axis.plot(steps, [r["loss"] for r in records], color="tab:blue", label="loss")
    loss_axis.set_ylabel("loss (per completion token)")
    loss_axis.set_title(title)
    loss_axis.grid(alpha=0.3)
    rate_axis = loss_axis.twinx()
    rate_axis.plot(steps, [r["learning_rate"] for r in records], color="tab:orange", alpha=0.6)
    rate_axis.set_ylabel("learning rate", color="tab:orange")
    if rewarded:
        reward_axis = axes[1]
        x = [r["step"] for r in rewarded]
        mean = [r["reward"] for r in rewarded]
        std = [r.get("reward_std", 0.0) for r in rewarded]
        reward_axis.plot(x, mean, color="tab:green", label="mean reward")
        reward_axis.fill_between(x, [m - s for m, s in zip(mean, std, strict=True)],
                                 [m + s for m, s in zip(mean, std, strict=True)],
                                 color="tab:green", alpha=0.2, label="± std")  # fmt: skip
        reward_axis.set_ylabel("reward")
        reward_axis.grid(alpha=0.3)
        reward_axis.legend(loc="lower right")
    axes[-1].set_xlabel("step")
    figure.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png_path)
    return True
