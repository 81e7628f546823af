"""Start heavy commands with glibc's malloc asking for transparent huge pages.

XLA's CPU runtime allocates its large buffers (a 512-token chunk of Gemma logits is
512 MiB) with malloc, which maps fresh pages for every one and returns them afterwards.
With 4 KiB pages that is a page fault per 4 KiB on every training step; with
``glibc.malloc.hugetlb=1`` malloc marks its mappings for transparent huge pages (2 MiB).
On the project's 2-core VM this took a Gemma 3 270M LoRA step from 20.4 s to 16.3 s
(docs/performance.md). glibc reads tunables only when a process starts, so the ``tunix``
entry point re-executes itself once with the tunable set, for the commands that run a
model: those registered with ``add_lazy_command(..., huge_pages=True)`` (and the core's
``run``). Plugins are loaded by then, but no command module, so JAX is not yet imported.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Collection, Mapping, Sequence

TUNABLE = "glibc.malloc.hugetlb=1"
OPT_OUT = "TUNIX_NO_HUGEPAGES"
_MIN_GLIBC = (2, 35)  # the first glibc with glibc.malloc.hugetlb


def _glibc_supports_hugetlb() -> bool:
    libc, version = platform.libc_ver()
    if libc != "glibc":
        return False
    try:
        return tuple(int(part) for part in version.split(".")[:2]) >= _MIN_GLIBC
    except ValueError:
        return False


def reexec_environment(
    args: Sequence[str], env: Mapping[str, str], *, supported: bool, commands: Collection[str]
) -> dict[str, str] | None:
    """The environment to re-execute ``tunix args`` with, or None to carry on as is;
    ``commands``: those that want huge pages (every other stays a single quick process)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if not supported or command not in commands or env.get(OPT_OUT):
        return None
    current = env.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in current:  # set already, by us or by the user
        return None
    return {**env, "GLIBC_TUNABLES": f"{current}:{TUNABLE}" if current else TUNABLE}


def reexec_with_huge_pages(commands: Collection[str]) -> None:
    """Replace this process with the same command line plus the tunable when it runs one of
    ``commands``, those that want huge pages."""
    if not sys.platform.startswith("linux"):
        return
    env = reexec_environment(
        sys.argv[1:], os.environ, supported=_glibc_supports_hugetlb(), commands=commands
    )
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)
