"""The one device rule for scoring and training, on a laptop, in a Spark task or a DDP rank.

``resolve_device(spec)``: an explicit ``cpu`` / ``cuda:N`` is used as given. ``auto`` (and a bare
``cuda``) take, in order: the GPU Spark assigned to the task (passed in as ``assigned_gpu`` by
the Spark worker, which alone may import Spark), the process's ``LOCAL_RANK`` (a DDP rank started
by TorchDistributor or torchrun owns that GPU), else ``cuda:0``; ``auto`` falls back to the CPU
when no GPU is visible, a bare ``cuda`` without one is an error.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .errors import UsageError

DEVICE_CHOICES_HELP = (
    "auto (the GPU Spark assigned to the task, else this rank's LOCAL_RANK GPU, else cuda:0, "
    "else cpu), cpu, cuda, cuda:N"
)


def resolve_device(
    spec: str | torch.device | None = "auto", *, assigned_gpu: str | None = None
) -> torch.device:
    """The torch device for ``spec`` (see the module docstring)."""
    text = "auto" if spec is None else str(spec)
    if text not in ("auto", "cuda"):
        try:
            return torch.device(text)
        except RuntimeError as exc:
            raise UsageError(f"unknown device {text!r}; use {DEVICE_CHOICES_HELP}") from exc
    if not torch.cuda.is_available():
        if text == "cuda":
            raise UsageError("--device cuda was asked for, but no CUDA GPU is visible")
        return torch.device("cpu")
    if assigned_gpu is not None:
        return torch.device(f"cuda:{assigned_gpu}")
    return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")


def wants_gpu(spec: str, gpus_available: bool) -> bool:
    """Whether a run asked for with ``spec`` (auto / cpu / cuda) uses GPUs, given what is there.

    For launchers that decide before any process exists (TorchDistributor's ``use_gpu``); the
    driver deciding may itself have no GPU, so an explicit ``cuda`` is taken at its word.
    """
    if spec == "auto":
        return gpus_available
    return str(spec).startswith("cuda")


PRECISIONS = ("fp32", "bf16", "auto")
PRECISION_HELP = (
    "fp32 (default: IEEE float32, the same scores on every machine), bf16 (bfloat16 convs: "
    "~2x faster on CPUs with AVX512-BF16 or AMX, scores within ~0.5 of fp32 on a 0-100 scale; "
    "~5x on GPUs, within ~1), auto (bf16 where the hardware computes it natively, else fp32; "
    "the summary says which ran)"
)
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 dot products in hardware (AVX512-BF16 or AMX-BF16).

    Read from ``/proc/cpuinfo`` (Linux). Without those instructions oneDNN has no native bf16
    dot product and converts to fp32 around it (autocast bf16 measured slower than fp32 on CPU),
    so ``auto`` does not pick it there. Elsewhere: False (fp32).
    """
    return bool(_cpu_flags(cpuinfo) & set(_CPU_BF16_FLAGS))


def _cpu_flags(cpuinfo: str | None) -> set[str]:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "")
    return set(flags.split(":", 1)[-1].split())


def cpu_runs_onednn_bf16(cpuinfo: str | None = None) -> bool:
    """Whether oneDNN's bf16 convolutions (``torch.utils.mkldnn``) run on this CPU at all: they
    need AVX512 BW+VL+DQ or AVX-NE-CONVERT (oneDNN refuses on AVX2-only CPUs, where bf16 then
    runs through autocast instead). Unknown (no /proc/cpuinfo): assumed not."""
    flags = _cpu_flags(cpuinfo)
    return {"avx512bw", "avx512vl", "avx512dq"} <= flags or "avx_ne_convert" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``precision`` on ``device`` (see ``PRECISION_HELP``).

    An explicit choice is taken as given; ``auto`` resolves where the model runs (a Spark
    executor, a Beam worker), because the driver's hardware says nothing about theirs.
    """
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if gpu_has_native_bf16(device) else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def gpu_has_native_bf16(device: torch.device) -> bool:
    """bf16 tensor cores: NVIDIA compute capability 8.0 and up (A100, L4, H100 ...), or ROCm.

    Not ``torch.cuda.is_bf16_supported()``: by default it also says yes where bf16 is only
    emulated (a T4), and it asks about the current device, not this one.
    """
    return torch.version.hip is not None or torch.cuda.get_device_properties(device).major >= 8
