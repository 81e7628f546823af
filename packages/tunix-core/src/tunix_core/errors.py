"""Errors a user can act on. The CLI prints them without a traceback and exits non-zero."""

from __future__ import annotations


class TunixError(Exception):
    """Base of the errors tunix reports as one clear message."""

    exit_code = 1


class ConfigError(TunixError):
    """A configuration value is missing, unknown or invalid; the message names the path."""

    exit_code = 2


class DataError(TunixError):
    """A dataset file or record is invalid; the message names file, line and field."""


class PluginError(TunixError):
    """A plugin failed to load while strict plugin loading is on, or misbehaved."""


class EvidenceError(TunixError):
    """An evidence file does not satisfy its schema or the rules of a submission."""
