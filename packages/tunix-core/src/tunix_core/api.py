"""Run tunix from Python: :func:`run` is what ``tunix run`` calls, and what a notebook
calls in its own kernel.

On a TPU VM the first process that initialises libtpu holds every chip, so a notebook
must not touch JAX in its kernel and then start ``tunix run`` in a subprocess; running
in the kernel through this module avoids that. Nothing here imports JAX: the model backend
plugin does, once the run reaches a stage that needs the model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunix_core import runner
from tunix_core.config import (
    RunConfig,
    apply_overrides,
    load_config,
    structure_config,
    unstructure_config,
)
from tunix_core.errors import ConfigError
from tunix_core.plugins import PluginHost, get_host
from tunix_core.types import STAGE_NAMES

ConfigSource = RunConfig | Mapping[str, Any] | str | os.PathLike[str] | None


def run(
    config: ConfigSource = None,
    *,
    overrides: Sequence[str] = (),
    resume: str | os.PathLike[str] | None = None,
    stop_after: str | None = None,
    echo: Callable[[str], None] = print,
    host: PluginHost | None = None,
    command: Sequence[str] | None = None,
) -> Path:
    """Validate everything, create the run directory and go through the stages; with
    ``resume``, finish that run directory with its saved config instead. Returns the run
    directory.

    ``config`` is a YAML file, a mapping of the same shape, a :class:`RunConfig`, or None
    for the defaults; ``overrides`` are ``KEY=VALUE`` strings as for ``--set``. ``echo``
    receives the progress lines and the closing table. ``command`` is the command line the
    manifest records (``tunix run`` passes its own). Errors are :class:`TunixError`s.
    """
    if stop_after is not None and stop_after not in STAGE_NAMES:
        raise ConfigError(
            f"stop_after: must be one of {', '.join(STAGE_NAMES)}, got {stop_after!r}"
        )
    host = host if host is not None else get_host()
    if resume is not None:
        if config is not None or overrides:
            raise ConfigError(
                "resume: a resumed run keeps its saved config; give no config or overrides"
            )
        directory, plan = runner.resume_run(host, Path(resume))
        echo(f"Resuming {directory.path}")
    else:
        resolved, config_path = _resolve(config, overrides)
        if command is None:
            source = str(config_path) if config_path else f"<{type(config).__name__}>"
            command = ["tunix_core.api.run", source, *overrides]
        directory, plan = runner.start_run(host, resolved, config_path=config_path, command=command)
        echo(f"Run directory: {directory.path}")
    runner.execute(host, directory, plan, echo=echo, stop_after=stop_after)
    echo(runner.closing_table(directory))
    return directory.path


def _resolve(config: ConfigSource, overrides: Sequence[str]) -> tuple[RunConfig, Path | None]:
    """The validated config and the file it came from (None for a mapping or an object)."""
    if config is None or isinstance(config, str | os.PathLike):
        path = None if config is None else Path(config)
        return load_config(path, overrides), path
    data = unstructure_config(config) if isinstance(config, RunConfig) else dict(config)
    return structure_config(apply_overrides(data, overrides)), None


__all__ = ["run"]
