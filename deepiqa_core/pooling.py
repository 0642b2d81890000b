"""Patch -> image pooling: q = sum(alpha_i * y_i) / sum(alpha_i).

Sums are accumulated in float64 so that an image's score does not depend on how its patches were
split over forward passes or batched with other images' patches (batch independence).
"""

from __future__ import annotations

import numpy as np
import torch


def pool(y: torch.Tensor | np.ndarray, alpha: torch.Tensor | np.ndarray) -> float:
    """Score of one image from its patches' local quality ``y`` and weights ``alpha``."""
    y64 = np.asarray(y, dtype=np.float64)
    a64 = np.asarray(alpha, dtype=np.float64)
    return float((a64 * y64).sum() / a64.sum())
