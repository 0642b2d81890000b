"""Weak quality labels from offline full-reference metrics (after DeepFL-IQA's KADIS-700k idea).

Version ``weak-v0``: ``label = 100 * (0.5 * SSIM + 0.5 * clip((PSNR - 10) / 40, 0, 1))``, SSIM on
the luma (BT.601) of distorted vs reference with an 11x11 Gaussian window (sigma 1.5, K1 0.01,
K2 0.03), PSNR over all three RGB channels (so colour-only changes count). 0-100, higher is
better; an undistorted image scores 100.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

WEAK_LABEL_VERSION = "weak-v0"


def luma(img: np.ndarray) -> np.ndarray:
    rgb = img.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _gaussian_filter(x: np.ndarray, sigma: float = 1.5, size: int = 11) -> np.ndarray:
    """Separable Gaussian filter, 'valid' borders, in float64 (torch: fast and already here)."""
    r = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-(r**2) / (2 * sigma**2))
    k /= k.sum()
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None, None]
    t = F.conv2d(F.conv2d(t, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return t[0, 0].numpy()


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luma images (0..255)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = _gaussian_filter(a), _gaussian_filter(b)
    var_a = _gaussian_filter(a * a) - mu_a**2
    var_b = _gaussian_filter(b * b) - mu_b**2
    cov = _gaussian_filter(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    s = num / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def weak_label(distorted: np.ndarray, reference: np.ndarray) -> float:
    structural = ssim(luma(distorted), luma(reference))
    fidelity = psnr(distorted.astype(np.float64), reference.astype(np.float64))
    return 100.0 * (0.5 * structural + 0.5 * float(np.clip((fidelity - 10) / 40, 0, 1)))
