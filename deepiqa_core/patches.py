"""32x32 patching: the deterministic inference grid (training crops: training.patch_sampling).

Grid (inference): top-left corners at 0, s, 2s, ... along each axis, ``floor((L - 32) / s) + 1``
positions per axis (the authors' count; with s = 32 a 512x384 image gives 16 x 12 = 192 patches).
The right/bottom remainder that does not fill a patch is not scored. Ports that loop over
``range(0, L - 32, 32)`` drop the last row/column when L is a multiple of 32; this module does not.

Patches are cut from uint8 (H, W, 3) arrays and become float (N, 3, 32, 32) in 0..1 only when a
chunk is cut, so a huge image never exists as floats all at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models import PATCH_SIZE


@dataclass(frozen=True)
class Grid:
    """Patch grid of one image: ``rows x cols`` patches, ``stride`` pixels apart."""

    rows: int
    cols: int
    stride: int

    @property
    def count(self) -> int:
        return self.rows * self.cols

    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Top-left (y, x) of every patch in row-major order (the order of all patch outputs)."""
        ys, xs = np.meshgrid(
            np.arange(self.rows) * self.stride, np.arange(self.cols) * self.stride, indexing="ij"
        )
        return ys.ravel(), xs.ravel()


def grid_for(height: int, width: int, stride: int = PATCH_SIZE) -> Grid:
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if min(height, width) < PATCH_SIZE:
        return Grid(0, 0, stride)
    return Grid((height - PATCH_SIZE) // stride + 1, (width - PATCH_SIZE) // stride + 1, stride)


def cut_grid(
    image: torch.Tensor,
    grid: Grid,
    row_start: int,
    row_stop: int,
    col_start: int = 0,
    col_stop: int | None = None,
) -> torch.Tensor:
    """Patches of grid rows [row_start, row_stop) x cols [col_start, col_stop), row-major.

    ``image`` is an (H, W, 3) uint8 tensor; returns float32 (N, 3, 32, 32) in 0..1 on its device.
    """
    col_stop = grid.cols if col_stop is None else col_stop
    s = grid.stride
    region = image[
        row_start * s : (row_stop - 1) * s + PATCH_SIZE,
        col_start * s : (col_stop - 1) * s + PATCH_SIZE,
    ]
    # (h, w, 3) -> (3, h, w) -> (3, nr, nc, 32, 32) -> (nr, nc, 3, 32, 32)
    tiles = region.permute(2, 0, 1).unfold(1, PATCH_SIZE, s).unfold(2, PATCH_SIZE, s)
    tiles = tiles.permute(1, 2, 0, 3, 4).reshape(-1, 3, PATCH_SIZE, PATCH_SIZE)
    return tiles.contiguous().float().div_(255.0)  # contiguous: one conv code path for all
