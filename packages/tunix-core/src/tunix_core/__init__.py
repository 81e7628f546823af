"""tunix-core: hook specs, plugin host, registries, config, run directory and the CLI."""

from importlib import metadata

try:
    __version__ = metadata.version("tunix-core")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
