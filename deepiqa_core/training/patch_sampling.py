"""Random 32x32 training crops, reproducible from (seed, epoch, row) alone.

The positions of a row's crops depend only on the run's seed, the epoch and the row's id, never on
which process reads the row or in which order; so a resumed or re-sharded run draws the same
crops, and the crops of a distorted image and its reference are taken at the same places.
"""

from __future__ import annotations

import numpy as np

from ..imaging import decode_image
from ..models import PATCH_SIZE
from ..seeding import rng


def crop_rng(seed: int, epoch: int, row_id: int) -> np.random.Generator:
    return rng("crops", seed, epoch, row_id)


def random_crops(
    image: np.ndarray, count: int, rng: np.random.Generator, reference: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``count`` crops (count, 3, 32, 32) uint8 of an (H, W, 3) image (and of its reference)."""
    h, w = image.shape[:2]
    if min(h, w) < PATCH_SIZE:
        raise ValueError(f"{w}x{h} is smaller than one {PATCH_SIZE}px patch")
    ys = rng.integers(0, h - PATCH_SIZE + 1, count)
    xs = rng.integers(0, w - PATCH_SIZE + 1, count)
    offsets = np.arange(PATCH_SIZE)
    rows = (ys[:, None] + offsets)[:, :, None]
    cols = (xs[:, None] + offsets)[:, None, :]

    def crop(img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(img[rows, cols].transpose(0, 3, 1, 2))

    return crop(image), crop(reference) if reference is not None else None


def example_crops(
    image: bytes, reference: bytes | None, count: int, seed: int, epoch: int, row_id: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode one training example's bytes and crop it (and its reference) for an epoch."""
    ref = decode_image(reference) if reference is not None else None
    return random_crops(decode_image(image), count, crop_rng(seed, epoch, row_id), ref)
