"""The ``[run] devices:`` line: which JAX a run uses, on which devices, in which mesh.

It is the first thing to read on a TPU VM (did this process get all eight chips, and
which libtpu?), so the run prints it itself rather than a notebook cell, which would
initialise the TPU in the wrong process.
"""

from __future__ import annotations

from tunix_core.rundir import installed_version
from tunix_jax import sharding as mesh_lib


def device_line(mesh_data: int | None = None, mesh_fsdp: int | None = None) -> str:
    """E.g. ``[run] devices: JAX 0.8.1 (jaxlib 0.8.1, libtpu 0.0.21), 8 x tpu (TPU v5
    lite), mesh data=8 x fsdp=1``; ``mesh_data``/``mesh_fsdp`` as in ``model.options``.
    Initialises the JAX backend: call it where the run already uses devices."""
    import jax

    devices = jax.devices()
    data, fsdp = mesh_lib.mesh_shape(len(devices), mesh_data, mesh_fsdp)
    builds = [f"jaxlib {installed_version('jaxlib')}"]
    builds += [f"{name} {v}" for name in ("libtpu", "libtpu-nightly") if (v := installed_version(name))]
    kinds = ", ".join(sorted({device.device_kind for device in devices}))
    line = (
        f"[run] devices: JAX {jax.__version__} ({', '.join(builds)}), "
        f"{len(devices)} x {devices[0].platform} ({kinds}), mesh data={data} x fsdp={fsdp}"
    )
    if jax.process_count() > 1:
        line += f", {jax.process_count()} processes of {jax.local_device_count()} devices"
    return line
