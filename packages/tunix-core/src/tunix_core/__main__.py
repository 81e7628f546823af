"""``python -m tunix_core`` is the ``tunix`` command."""

from tunix_core.cli import main

main()
