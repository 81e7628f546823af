"""Heavy commands re-execute once with glibc's huge-page tunable; light ones never do."""

import os
import subprocess
import sys

import pytest

from tunix_core.hugepages import OPT_OUT, TUNABLE, _glibc_supports_hugetlb, reexec_environment


@pytest.mark.parametrize("args", [["run", "--trainer", "jax"], ["bench", "train"], ["eval"]])
def test_heavy_commands_get_the_tunable(args):
    env = reexec_environment(args, {"PATH": "/bin"}, supported=True)
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": TUNABLE}


@pytest.mark.parametrize("args", [[], ["--help"], ["plugins"], ["datasets", "list"], ["--version"]])
def test_light_commands_stay_in_process(args):
    assert reexec_environment(args, {}, supported=True) is None


def test_existing_tunables_are_kept_and_never_doubled():
    env = reexec_environment(["run"], {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, supported=True)
    assert env is not None
    assert env["GLIBC_TUNABLES"] == f"glibc.malloc.arena_max=2:{TUNABLE}"
    assert reexec_environment(["run"], env, supported=True) is None
    off = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
    assert reexec_environment(["run"], off, supported=True) is None  # the user's choice wins


def test_opt_out_and_unsupported_libc():
    assert reexec_environment(["run"], {OPT_OUT: "1"}, supported=True) is None
    assert reexec_environment(["run"], {}, supported=False) is None


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and _glibc_supports_hugetlb()),
    reason="needs Linux with glibc >= 2.35",
)
def test_the_process_really_reexecutes_with_the_tunable():
    code = (
        "import os, sys; sys.argv = ['tunix', 'run', '--help']; "
        "from tunix_core.hugepages import reexec_with_huge_pages; reexec_with_huge_pages(); "
        "print('TUNABLES=' + os.environ.get('GLIBC_TUNABLES', ''))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", OPT_OUT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines() == [f"TUNABLES={TUNABLE}"]
