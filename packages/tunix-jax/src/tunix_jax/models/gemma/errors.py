"""Errors raised while reading weights; each message names the file and the tensor."""

from __future__ import annotations

from tunix_core.errors import ConfigError


class WeightsNotFoundError(ConfigError, FileNotFoundError):
    """A weights file or directory that does not exist, or lacks a tensor the model needs."""


class WeightsShapeError(ConfigError, ValueError):
    """A tensor whose shape does not fit the chosen model preset."""


class UnsupportedQuantizationError(ConfigError, ValueError):
    """A GGUF tensor stored in a quantisation type this loader cannot dequantise."""


class WeightsDamagedError(ConfigError, ValueError):
    """A weights checkpoint whose files exist but cannot be read (half-written, truncated)."""
