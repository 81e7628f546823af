"""A per-step training logger: one ``step<TAB>loss`` line per optimizer step in
``step_log.tsv`` in the run directory (the ``tunix_train_step_end`` hook in plugin.py)."""

from __future__ import annotations

from pathlib import Path

FILENAME = "step_log.tsv"


def log_step(run_dir: Path, step: int, metrics: dict[str, float]) -> None:
    # Append and close each time: a killed run keeps every line it logged.
    with (run_dir / FILENAME).open("a", encoding="utf-8") as handle:
        handle.write(f"{step}\t{metrics['loss']:.6f}\n")


def read_log(run_dir: Path) -> list[tuple[int, float]]:
    """The logged ``(step, loss)`` pairs, in order."""
    lines = (run_dir / FILENAME).read_text(encoding="utf-8").splitlines()
    return [(int(step), float(loss)) for step, loss in (line.split("\t") for line in lines)]
