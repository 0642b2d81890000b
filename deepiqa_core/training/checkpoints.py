"""Training checkpoints: written atomically, read without unpickling code.

A checkpoint holds only tensors, numbers and strings, so ``torch.load(weights_only=True)`` reads
it; a half-written file never replaces a good one (write to a temporary name, then rename).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

NAME = re.compile(r"^epoch-(\d{5})\.pt$")


def checkpoint_path(folder: Path, epoch: int) -> Path:
    return folder / f"epoch-{epoch:05d}.pt"


def save_checkpoint(folder: Path, epoch: int, state: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = checkpoint_path(folder, epoch)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def latest_checkpoint(folder: Path) -> Path | None:
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := NAME.match(p.name)))
    return found[-1][1] if found else None


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)
