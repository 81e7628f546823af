"""What the google-tunix trainers need installed, checked without importing it."""

from __future__ import annotations

import importlib.util

from tunix_core.errors import TunixError

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
