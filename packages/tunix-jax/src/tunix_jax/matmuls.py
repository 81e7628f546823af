"""``model.options.matmul_dtype: auto`` (the default): bf16 operands for the weight matmuls
where the hardware multiplies bf16 natively, float32 elsewhere.

An accelerator (GPU, TPU) always does. A CPU does when it has AVX512-BF16 or AMX-BF16
(from the flags in ``/proc/cpuinfo``): XLA then runs bf16 dot products at about twice
the float32 speed, where any other CPU would emulate them, slower than float32. A CPU
whose flags cannot be read gets float32. The choice is made once per process.
"""

from __future__ import annotations

import functools
from pathlib import Path

import attrs

# CPU flags (as Linux names them) of native bf16 dot products.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")


@attrs.frozen
class MatmulChoice:
    """The operand dtype of the weight matmuls (``float32`` or ``bfloat16``) and why."""

    dtype: str
    reason: str


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str] | None:
    """The first CPU's flags from ``cpuinfo``; None where it cannot be read or has no
    ``flags`` line (not Linux, not x86)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return None


def choose_matmul_dtype(platform: str, flags: frozenset[str] | None) -> MatmulChoice:
    """What ``auto`` means on JAX's default ``platform`` (``cpu``, ``gpu``, ``tpu``) with
    these CPU ``flags`` (None: unreadable)."""
    if platform != "cpu":
        return MatmulChoice("bfloat16", f"auto: on {platform}")
    if flags is None:
        return MatmulChoice("float32", f"auto: CPU flags unreadable ({CPUINFO})")
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if native:
        return MatmulChoice("bfloat16", f"auto: CPU has {' and '.join(native)}")
    return MatmulChoice("float32", f"auto: CPU has no {' or '.join(NATIVE_BF16_FLAGS)}")


@functools.cache
def auto_matmul_dtype() -> MatmulChoice:
    """``auto`` on this machine (initialises JAX's backend)."""
    import jax  # startup: JAX loads with the first model, not with this module

    return choose_matmul_dtype(jax.default_backend(), cpu_flags())


def resolve_matmul_dtype(name: str) -> MatmulChoice:
    """``model.options.matmul_dtype`` settled: ``auto`` as this machine has it, else as given."""
    if name == "auto":
        return auto_matmul_dtype()
    return MatmulChoice(name, "model.options.matmul_dtype")
