"""Quality maps: a picture of the local quality y_i and weights alpha_i over an image.

The PNG has three panels side by side: the image, local quality, and patch weight. Each map is
coloured from its own minimum (dark blue) to maximum (yellow) over the image's patches and blended
over a greyscale copy of the image; pixels outside the scored grid (right/bottom remainder) stay
grey. With the default stride each patch is a 32x32 block; with overlapping patches each pixel
shows the mean of the patches that cover it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .models import PATCH_SIZE
from .scoring import PatchMap

# A short perceptually ordered ramp (dark blue -> teal -> green -> yellow).
_RAMP = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64
)
_GAP = 8


def colorize(values: np.ndarray) -> np.ndarray:
    """Map an array of values to RGB uint8 along the ramp, min -> first colour, max -> last."""
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    t = np.zeros_like(values, dtype=np.float64) if hi <= lo else (values - lo) / (hi - lo)
    pos = np.clip(t, 0, 1) * (len(_RAMP) - 1)
    stops = np.arange(len(_RAMP))
    rgb = np.stack([np.interp(pos, stops, _RAMP[:, c]) for c in range(3)], axis=-1)
    return rgb.astype(np.uint8)


def patch_field(patch_map: PatchMap, values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Per-pixel mean of ``values`` over the patches covering each pixel (NaN where none do)."""
    total = np.zeros((height, width))
    count = np.zeros((height, width))
    ys, xs = patch_map.positions()
    for y, x, v in zip(ys, xs, values, strict=True):
        total[y : y + PATCH_SIZE, x : x + PATCH_SIZE] += v
        count[y : y + PATCH_SIZE, x : x + PATCH_SIZE] += 1
    with np.errstate(invalid="ignore"):
        return total / count


def render_map(image: np.ndarray, patch_map: PatchMap) -> np.ndarray:
    """The three-panel picture as an (H, 3W + gaps, 3) uint8 array."""
    h, w = image.shape[:2]
    gray = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    panels = [image]
    for values in (patch_map.quality, patch_map.weight):
        field = patch_field(patch_map, values, h, w)
        covered = ~np.isnan(field)
        colours = colorize(np.where(covered, field, np.nanmin(field)))
        blend = np.where(covered[..., None], 0.75 * colours + 0.25 * gray, 0.5 * gray)
        panels.append(blend.astype(np.uint8))
    gap = np.full((h, _GAP, 3), 255, dtype=np.uint8)
    return np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)


def save_map(image: np.ndarray, patch_map: PatchMap, path: str | Path) -> None:
    Image.fromarray(render_map(image, patch_map)).save(path)
