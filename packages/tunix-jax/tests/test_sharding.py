import pytest
from jax.sharding import PartitionSpec

from tunix_core.errors import ConfigError
from tunix_jax.sharding import (
    fsdp_spec,
    initialize_distributed,
    make_mesh,
    mesh_shape,
    multi_host_requested,
)


def test_default_mesh_puts_every_device_on_data():
    assert mesh_shape(8, None, None) == (8, 1)
    assert mesh_shape(8, None, 4) == (2, 4)
    assert mesh_shape(8, 2, None) == (2, 4)
    mesh = make_mesh()
    assert mesh.axis_names == ("data", "fsdp") and mesh.shape["fsdp"] == 1


def test_a_mesh_that_does_not_cover_the_devices_names_the_fields():
    fields = r"model\.options\.mesh_data x model\.options\.mesh_fsdp = 3 x 2"
    with pytest.raises(ConfigError, match=fields):
        mesh_shape(8, 3, 2)


def test_fsdp_shards_the_largest_evenly_divisible_dimension():
    assert fsdp_spec((640, 2048), 4) == PartitionSpec(None, "fsdp")
    assert fsdp_spec((6, 640), 4) == PartitionSpec(None, "fsdp")
    assert fsdp_spec((3, 5), 4) == PartitionSpec()
    assert fsdp_spec((640, 2048), 1) == PartitionSpec()
    assert fsdp_spec((), 2) == PartitionSpec()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}, True),
        ({"TPU_WORKER_HOSTNAMES": "host-a,host-b"}, True),
        ({"TPU_WORKER_HOSTNAMES": "host-a"}, False),
        ({"SLURM_NTASKS": "4"}, True),
        ({"OMPI_COMM_WORLD_SIZE": "1"}, False),
    ],
)
def test_multi_host_detection(env, expected):
    assert multi_host_requested(env) is expected


def test_a_process_count_that_is_not_a_number_is_named(monkeypatch):
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "two")
    expected = "^environment variable JAX_NUM_PROCESSES: expected a whole number, got 'two'$"
    with pytest.raises(ConfigError, match=expected):
        initialize_distributed()
