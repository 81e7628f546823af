"""The ``[run] devices:`` line names JAX's version, the devices and the mesh."""

import os
import re
import subprocess
import sys

import jax
import jaxlib
import pytest

from tunix_core.errors import ConfigError
from tunix_jax.devices import device_line


def test_line_on_this_host():
    line = device_line()
    count = jax.device_count()
    assert line.startswith(f"[run] devices: JAX {jax.__version__} (jaxlib {jaxlib.__version__}")
    assert re.search(rf", {count} x cpu \([^)]+\), mesh data={count} x fsdp=1$", line), line


def test_mesh_that_does_not_fit_the_devices_is_a_config_error():
    with pytest.raises(ConfigError, match="must equal the number of devices"):
        device_line(mesh_data=jax.device_count() + 1)


def test_line_with_four_devices_split_two_by_two():
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}  # fmt: skip
    code = "from tunix_jax.devices import device_line; print(device_line(mesh_fsdp=2))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert ", 4 x cpu (cpu), mesh data=2 x fsdp=2" in result.stdout, result.stdout
