"""The device mesh (axes ``data`` and ``fsdp``) and how arrays are laid out on it.

Parameters and optimizer state are sharded over ``fsdp`` along their largest dimension
that divides evenly (else replicated); a batch is split over both axes, so every device
works on its own rows. With one device everything is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from tunix_core.errors import ConfigError

DATA, FSDP = "data", "fsdp"


def multi_host_requested(env: dict[str, str] | None = None) -> bool:
    """Whether the environment describes several JAX processes (an explicit coordinator,
    a multi-host TPU slice, SLURM or Open MPI with more than one task)."""
    env = dict(os.environ) if env is None else env
    if env.get("JAX_COORDINATOR_ADDRESS"):
        return True
    if "," in env.get("TPU_WORKER_HOSTNAMES", ""):
        return True
    for key in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE"):
        try:
            if int(env.get(key, "1")) > 1:
                return True
        except ValueError:
            continue
    return False


def initialize_distributed() -> None:
    """Join the other hosts with ``jax.distributed.initialize()`` when asked to; must run
    before anything touches a JAX device. Where no cluster manager says how many processes
    there are and which one this is (a coordinator address given by hand, as on CPUs),
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` do."""
    if not multi_host_requested() or jax.distributed.is_initialized():
        return
    jax.distributed.initialize(
        num_processes=_count_from_env("JAX_NUM_PROCESSES"),
        process_id=_count_from_env("JAX_PROCESS_ID"),
    )


def _count_from_env(key: str) -> int | None:
    value = os.environ.get(key)
    if value is None:
        return None
    if not value.isdigit():
        raise ConfigError(f"environment variable {key}: expected a whole number, got {value!r}")
    return int(value)


def sync_processes(name: str) -> None:
    """Wait until every JAX process reaches the barrier ``name``; a no-op with one."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def decided_by_process_zero(flag: bool) -> bool:
    """``flag`` as process 0 has it; every process must call this at the same point
    (a collective). With one process, ``flag`` itself."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))


def mesh_shape(device_count: int, mesh_data: int | None, mesh_fsdp: int | None) -> tuple[int, int]:
    """(data, fsdp) sizes; by default every device is on the data axis."""
    if mesh_data is None and mesh_fsdp is None:
        return device_count, 1
    if mesh_data is None:
        assert mesh_fsdp is not None
        mesh_data = device_count // mesh_fsdp
    if mesh_fsdp is None:
        mesh_fsdp = device_count // mesh_data
    if mesh_data * mesh_fsdp != device_count:
        raise ConfigError(
            f"model.options.mesh_data x model.options.mesh_fsdp = {mesh_data} x {mesh_fsdp} "
            f"must equal the number of devices ({device_count})"
        )
    return mesh_data, mesh_fsdp


def make_mesh(mesh_data: int | None = None, mesh_fsdp: int | None = None) -> Mesh:
    devices = jax.devices()
    data, fsdp = mesh_shape(len(devices), mesh_data, mesh_fsdp)
    return Mesh(np.asarray(devices).reshape(data, fsdp), (DATA, FSDP))


def fsdp_spec(shape: tuple[int, ...], fsdp_size: int) -> PartitionSpec:
    """Shard the largest dimension divisible by ``fsdp_size``; replicate if none is."""
    if fsdp_size > 1:
        for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
            if shape[dim] % fsdp_size == 0:
                spec: list[str | None] = [None] * len(shape)
                spec[dim] = FSDP
                return PartitionSpec(*spec)  # type: ignore[no-untyped-call]  # jaxlib has no stubs
    return PartitionSpec()  # type: ignore[no-untyped-call]  # jaxlib has no stubs


def state_shardings(mesh: Mesh, tree: Any) -> Any:
    """A NamedSharding per leaf of ``tree`` (arrays or ShapeDtypeStructs)."""
    fsdp_size = mesh.shape[FSDP]
    return jax.tree.map(lambda x: NamedSharding(mesh, fsdp_spec(x.shape, fsdp_size)), tree)


def batch_sharding(mesh: Mesh, leading_axes: int = 0) -> NamedSharding:
    """Rows split over (data, fsdp); ``leading_axes`` unsplit axes come first (the
    micro-batch axis of gradient accumulation)."""
    spec = PartitionSpec(*([None] * leading_axes), (DATA, FSDP))  # type: ignore[no-untyped-call]  # jaxlib has no stubs
    return NamedSharding(mesh, spec)


def put_global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array every process holds in full (each process's data
    stream draws the same global batch from the same seed); each process copies only the
    rows of its own devices."""
    fetch: Callable[[Any], np.ndarray] = lambda index: array[index]  # noqa: E731
    return jax.make_array_from_callback(array.shape, sharding, fetch)
