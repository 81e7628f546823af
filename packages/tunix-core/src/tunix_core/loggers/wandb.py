"""Weights & Biases, from the extra ``tunix-core[wandb]``, when ``logging.wandb`` is true.

Online only when the user is logged in (``WANDB_API_KEY``, or ``wandb login``'s entry in
``~/.netrc``) or sets ``WANDB_MODE`` themselves; otherwise offline, so a run never waits
on the network or prompts for a key (``wandb sync`` uploads it later). The W&B run is
named and identified by the tunix run id (a resumed run continues it). Its files go where
W&B puts them (``WANDB_DIR``, else ``./wandb``), not into the run directory: W&B makes
symbolic links there, which evidence validation refuses.
"""

from __future__ import annotations

import netrc
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

if TYPE_CHECKING:
    from tunix_core.config import LoggingSection
    from tunix_core.rundir import RunDirectory

DEFAULT_HOST = "https://api.wandb.ai"
INSTALL_HINT = "pip install 'tunix-core[wandb]'"


def has_credentials() -> bool:
    """Whether W&B would find an API key: ``WANDB_API_KEY`` or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", DEFAULT_HOST)).hostname
    try:
        return host is not None and netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def default_mode() -> Literal["online", "offline"] | None:
    """``None`` (W&B decides) when ``WANDB_MODE`` is set, else online only when logged in."""
    if os.environ.get("WANDB_MODE"):
        return None
    return "online" if has_credentials() else "offline"


class WandbLogger:
    name = "wandb"

    def __init__(self, wandb_run: Any) -> None:
        self._run = wandb_run

    @classmethod
    def open(cls, run: RunDirectory, config: Mapping[str, Any], settings: LoggingSection) -> WandbLogger:
        try:
            import wandb
        except ImportError:
            raise RuntimeError(f"logging.wandb is true but wandb is not installed: {INSTALL_HINT}") from None
        wandb_run = wandb.init(
            project=settings.wandb_project,
            entity=settings.wandb_entity,
            name=run.run_id,
            id=run.run_id,
            resume="allow",
            config=dict(config),
            mode=default_mode(),
            settings=wandb.Settings(console="off"),  # leave stdout/stderr (and tqdm) alone
        )
        return cls(wandb_run)

    def training_starts(self, step: int) -> None:
        pass  # W&B keeps its history; it ignores steps below one a resumed run logged

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self._run.log(dict(scalars), step=step)

    def close(self, status: str) -> None:
        self._run.finish(exit_code=0 if status == "succeeded" else 1)
