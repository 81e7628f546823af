"""The CLI's start-up path must stay light: no JAX, Flax, Optax, Orbax or datasets."""

import subprocess
import sys

import pytest

HEAVY = ("jax", "flax", "optax", "orbax", "datasets", "torch", "transformers")
PROBE = """
import atexit, sys
heavy = {heavy!r}
atexit.register(lambda: print("HEAVY=" + ",".join(m for m in heavy if m in sys.modules)))
sys.argv = ["tunix", *{args!r}]
from tunix_core.cli import main
main()
"""


@pytest.mark.parametrize("args", [["--help"], ["plugins"], ["datasets", "list"]])
def test_cli_start_up_imports_no_heavy_library(args):
    code = PROBE.format(heavy=HEAVY, args=args)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "HEAVY=\n" in result.stdout, result.stdout[-500:]
