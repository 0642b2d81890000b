"""The one device rule for scoring and training, on a laptop, in a Spark task or a DDP rank.

``resolve_device(spec)``: an explicit ``cpu`` / ``cuda:N`` is used as given. ``auto`` (and a bare
``cuda``) take, in order: the GPU Spark assigned to the task (passed in as ``assigned_gpu`` by
the Spark worker, which alone may import Spark), the process's ``LOCAL_RANK`` (a DDP rank started
by TorchDistributor or torchrun owns that GPU), else ``cuda:0``; ``auto`` falls back to the CPU
when no GPU is visible, a bare ``cuda`` without one is an error.
"""

from __future__ import annotations

import os

import torch

from .exits import UsageError

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


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where asked for and useful (GPUs); fp32 (None) otherwise."""
    return torch.bfloat16 if precision == "bf16" and device.type != "cpu" else None
