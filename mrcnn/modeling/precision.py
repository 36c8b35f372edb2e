"""The dtype policy chosen by hardware: `MIXED_PRECISION="auto"` and the warnings for a policy
that is likely slower than float32 on the machine at hand.

Why the hardware decides (measured on machines of our kind, DESIGN.md "Stack"):
- CPUs whose /proc/cpuinfo flags show `amx_bf16` (or `avx512_bf16`) run bf16 natively: a bf16
  2048² matmul ran ~3x and a bf16 3x3 conv ~4.8x faster than float32 with AMX.
- CPUs without them emulate bf16: a bf16 matmul ran at 61 GFLOP/s against 288 in float32 and
  the whole model 3.8x slower (heads step 7.6 s against 2.0 s, ResNet-101).
- float16 on a CPU has no fast kernels at all (~250x slower than float32).
- GPUs of compute capability >= 7.0 (Volta and later) have float16 tensor cores; bf16 needs
  >= 8.0 (Ampere).

Everything that detects the hardware is in this module: `cpu_flags` parses cpuinfo text,
`gpu_compute_capabilities` asks TensorFlow, `choose_policy` and `slow_policy_reason` are pure
functions of those two (unit-tested with fake inputs), and `resolve_policy` puts them together
for the builder (`mrcnn.modeling.builder.build_keras_model`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence

logger = logging.getLogger(__name__)

CPUINFO_PATH = "/proc/cpuinfo"
# CPU flags with native bf16 arithmetic (Intel AMX tiles; AVX512-BF16 dot products).
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
# Flags worth naming in benchmark reports (the bf16 ones and the float32 vector width).
REPORTED_CPU_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f")
# Compute capabilities from which a GPU has fast float16 (tensor cores) and fast bfloat16.
FLOAT16_GPU_CAPABILITY = (7, 0)
BFLOAT16_GPU_CAPABILITY = (8, 0)
AUTO = "auto"
FLOAT32 = None  # Keras' default policy: the builder leaves the global policy alone.
EXPLICIT_POLICIES = ("mixed_bfloat16", "mixed_float16")


def cpu_flags(cpuinfo_text: str) -> frozenset[str]:
    """The CPU flags of /proc/cpuinfo text (x86 `flags`, ARM `Features` lines), lower case.

    Args:
        cpuinfo_text: the file's content; every processor's line is read (they agree on
            the machines we know, and a flag any of them has counts).

    Returns:
        The set of flags, empty when the text has no flags line.
    """
    flags: set[str] = set()
    for line in cpuinfo_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            flags.update(value.lower().split())
    return frozenset(flags)


@functools.lru_cache(maxsize=1)
def machine_cpu_flags(path: str = CPUINFO_PATH) -> frozenset[str]:
    """`cpu_flags` of this machine (empty when `path` cannot be read, e.g. not Linux)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return cpu_flags(f.read())
    except OSError:
        logger.debug("Cannot read %s; assuming no bf16 CPU flags", path)
        return frozenset()


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """The compute capability (major, minor) of every GPU TensorFlow sees; (0, 0) where
    TensorFlow does not report one. Empty without GPUs."""
    import tensorflow as tf

    capabilities = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except (ValueError, RuntimeError):
            details = {}
        capability = details.get("compute_capability") or (0, 0)
        capabilities.append((int(capability[0]), int(capability[1])))
    return capabilities


def _has_bf16(flags: Iterable[str]) -> bool:
    return any(flag in set(flags) for flag in BF16_CPU_FLAGS)


def choose_policy(flags: Iterable[str], gpus: Sequence[tuple[int, int]]
                  ) -> tuple[str | None, str]:
    """The policy that should run fastest, and why.

    With a GPU, TensorFlow places the model there, so the GPUs decide (the slowest one, since
    a strategy runs on all of them); otherwise the CPU flags do.

    Args:
        flags: the CPU flags (`cpu_flags`).
        gpus: the compute capabilities of the visible GPUs (`gpu_compute_capabilities`).

    Returns:
        (policy, reason): policy "mixed_float16", "mixed_bfloat16" or None (float32).
    """
    flags = frozenset(flags)
    if gpus:
        slowest = min(tuple(g) for g in gpus)
        if slowest >= FLOAT16_GPU_CAPABILITY:
            return "mixed_float16", f"GPU compute capability {slowest[0]}.{slowest[1]} >= 7.0"
        return FLOAT32, (f"GPU compute capability {slowest[0]}.{slowest[1]} < 7.0 "
                         "(no float16 tensor cores)")
    native = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if native:
        return "mixed_bfloat16", f"CPU flags show {', '.join(native)}"
    return FLOAT32, f"no GPU, and the CPU flags show neither of {', '.join(BF16_CPU_FLAGS)}"


def slow_policy_reason(policy: str | None, flags: Iterable[str],
                       gpus: Sequence[tuple[int, int]]) -> str | None:
    """Why an explicit `policy` is likely slower than float32 here, or None if it is not.

    Args:
        policy: "mixed_bfloat16", "mixed_float16", or None or "float32" (never slow).
        flags: the CPU flags.
        gpus: the compute capabilities of the visible GPUs.
    """
    if policy is None or policy == "float32":
        return None
    flags = frozenset(flags)
    slowest = min(tuple(g) for g in gpus) if gpus else None
    if policy == "mixed_float16":
        if slowest is None:
            return "float16 runs on the CPU here, which has no fast float16 kernels"
        if slowest < FLOAT16_GPU_CAPABILITY:
            return (f"GPU compute capability {slowest[0]}.{slowest[1]} has no float16 tensor "
                    "cores (needs >= 7.0)")
        return None
    if policy == "mixed_bfloat16":
        if slowest is not None:
            if slowest < BFLOAT16_GPU_CAPABILITY:
                return (f"GPU compute capability {slowest[0]}.{slowest[1]} has no fast bfloat16 "
                        "(needs >= 8.0)")
            return None
        if not _has_bf16(flags):
            return (f"the CPU flags show neither of {', '.join(BF16_CPU_FLAGS)}, so bfloat16 "
                    "is emulated (measured 3.8x slower than float32 on such a CPU)")
        return None
    raise ValueError(
        f"policy must be None, 'float32', 'mixed_bfloat16' or 'mixed_float16', got {policy!r}")


def resolve_policy(requested: str | None, flags: Iterable[str] | None = None,
                   gpus: Sequence[tuple[int, int]] | None = None) -> str | None:
    """The Keras dtype policy to build with for MIXED_PRECISION `requested`.

    "auto" picks `choose_policy` and logs the choice (INFO); an explicit policy is kept, with a
    warning when `slow_policy_reason` finds it likely slower than float32 here.

    Args:
        requested: None (float32), "auto", "mixed_bfloat16" or "mixed_float16".
        flags: the CPU flags; default this machine's (`machine_cpu_flags`).
        gpus: the GPUs' compute capabilities; default `gpu_compute_capabilities()`.

    Returns:
        "mixed_bfloat16", "mixed_float16" or None (float32).

    Raises:
        ValueError: for any other `requested` value.
    """
    if requested is not None and requested != AUTO and requested not in EXPLICIT_POLICIES:
        raise ValueError(
            f"MIXED_PRECISION must be None, 'auto', 'mixed_bfloat16' or 'mixed_float16', "
            f"got {requested!r}")
    if requested is None:
        return FLOAT32
    flags = machine_cpu_flags() if flags is None else frozenset(flags)
    gpus = gpu_compute_capabilities() if gpus is None else list(gpus)
    if requested == AUTO:
        policy, reason = choose_policy(flags, gpus)
        logger.info("MIXED_PRECISION='auto' chose %s: %s", policy or "float32", reason)
        return policy
    reason = slow_policy_reason(requested, flags, gpus)
    if reason:
        logger.warning("MIXED_PRECISION=%r is likely slower than float32 on this machine: %s. "
                       "Use 'auto' or None.", requested, reason)
    return requested


def reported_cpu_flags(flags: Iterable[str] | None = None) -> dict[str, bool]:
    """{flag: present} for REPORTED_CPU_FLAGS (benchmark reports name them)."""
    flags = machine_cpu_flags() if flags is None else frozenset(flags)
    return {flag: flag in flags for flag in REPORTED_CPU_FLAGS}
