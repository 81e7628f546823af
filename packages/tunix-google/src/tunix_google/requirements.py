"""What the google-tunix trainers need: google-tunix installed (checked without importing
it), and options it can honour."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

from tunix_core.errors import ConfigError, TunixError

INSTALL_HINT = "pip install 'tunix-google[google-tunix]'"
# Import name -> distribution of what the trainers import.
NEEDED = {"tunix": "google-tunix", "qwix": "qwix"}


def missing() -> list[str]:
    """The distributions of :data:`NEEDED` that are not installed."""
    return [dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None]


def require(trainer: str) -> None:
    """Raise a one-line TunixError saying how to install what ``trainer`` lacks."""
    absent = missing()
    if absent:
        raise TunixError(
            f"the {trainer} trainer runs google-tunix's own training code; "
            f"{' and '.join(absent)} not installed: {INSTALL_HINT}"
        )


def refuse_unsupported(
    options: Mapping[str, object],
    trainer: str,
    unsupported: Mapping[str, str],
    google_behaviour: Mapping[str, object],
) -> None:
    """Raise a one-line ConfigError naming the first of ``options`` (``trainer.options``)
    that ``unsupported`` says google-tunix cannot honour, and why. A value equal to what
    google-tunix does anyway (``google_behaviour``, e.g. ``packing: false``) is accepted,
    so one config can state the settings both engines share."""
    for key, value in options.items():
        if key in google_behaviour and value == google_behaviour[key]:
            continue
        if key in unsupported:
            raise ConfigError(
                f"trainer.options.{key}: not supported by {trainer}: {unsupported[key]}"
            )
