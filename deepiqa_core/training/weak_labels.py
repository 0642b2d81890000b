"""Weak quality labels from offline full-reference metrics (after DeepFL-IQA's KADIS-700k idea).

A label version names a formula; changing it changes what a model trained on it predicts, so
the version goes into every synthetic row's dataset name (``synthetic-weak-v1``) and the weights
metadata. 0-100, higher is better; an undistorted image scores exactly 100 in both versions.

``weak-v1`` (the default):
``100 * (0.4 * MS-SSIM + 0.4 * (1 - min(GMSD / 0.35, 1)) + 0.2 * chroma)``

* MS-SSIM (Wang et al. 2003) on luma (BT.601, 0..255): 11x11 Gaussian window (sigma 1.5),
  five scales with the published exponents; an image too small for five scales uses the scales
  it has (exponents renormalised); negative contrast-structure terms are clipped at 0.
* GMSD (Xue et al. 2014) on luma: 2x2 mean then downsampling by 2, Prewitt gradients,
  c = 170; 0 for identical images, ~0.35 for the worst KADID levels (hence the 0.35).
* chroma: FSIMc's chrominance similarity (Zhang et al. 2011) of the YIQ I and Q planes,
  T = 200, each plane's similarity clipped to 0..1 per pixel, the product's mean. Luma-only
  metrics are blind to colour changes.

Why these: on KADID-10k, MS-SSIM (SROCC ~0.82) and GMSD (~0.85) track opinion scores far better
than SSIM (~0.72) or PSNR (~0.68), the two terms of ``weak-v0``. The weights are a design
choice, not fitted to opinion scores (no such data is available offline).

``weak-v0`` (kept so older synthetic sets can be regenerated exactly):
``100 * (0.5 * SSIM + 0.5 * clip((PSNR - 10) / 40, 0, 1))``, SSIM on luma, PSNR over RGB.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

WEAK_LABEL_VERSION = "weak-v1"
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
GMSD_WORST = 0.35
CHROMA_T = 200.0
GMSD_C = 170.0


def luma(img: np.ndarray) -> np.ndarray:
    rgb = img.astype(np.float64)
    if rgb.ndim == 2:
        return rgb
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None, None]


def _gaussian_filter(x: np.ndarray, sigma: float = 1.5, size: int = 11) -> np.ndarray:
    """Separable Gaussian filter, 'valid' borders, in float64 (torch: fast and already here)."""
    r = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-(r**2) / (2 * sigma**2))
    k /= k.sum()
    t = F.conv2d(F.conv2d(_t(x), k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
    return t[0, 0].numpy()


def _ssim_terms(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SSIM's luminance and contrast-structure maps of two luma images (0..255)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = _gaussian_filter(a), _gaussian_filter(b)
    var_a = _gaussian_filter(a * a) - mu_a**2
    var_b = _gaussian_filter(b * b) - mu_b**2
    cov = _gaussian_filter(a * b) - mu_a * mu_b
    luminance = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1)
    return luminance, (2 * cov + c2) / (var_a + var_b + c2)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two luma images (0..255)."""
    luminance, cs = _ssim_terms(a, b)
    return float((luminance * cs).mean())


def _halve(x: np.ndarray) -> np.ndarray:
    return F.avg_pool2d(_t(x), 2)[0, 0].numpy()


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Multi-scale SSIM of two luma images (0..255); as many of the five scales as fit."""
    scales = 1 + sum(min(a.shape) // 2**k >= 11 for k in range(1, len(MS_SSIM_WEIGHTS)))
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales]) / sum(MS_SSIM_WEIGHTS[:scales])
    value = 1.0
    for k, w in enumerate(weights):
        luminance, cs = _ssim_terms(a, b)
        term = (luminance * cs).mean() if k == scales - 1 else cs.mean()
        value *= max(float(term), 0.0) ** w
        a, b = _halve(a), _halve(b)
    return value


def gmsd(a: np.ndarray, b: np.ndarray) -> float:
    """Gradient magnitude similarity deviation of two luma images (0..255); 0 = identical."""
    prewitt = torch.tensor([[1.0, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=torch.float64) / 3

    def magnitude(x: np.ndarray) -> torch.Tensor:
        t = F.avg_pool2d(_t(x), 2)
        gx = F.conv2d(t, prewitt.view(1, 1, 3, 3))
        gy = F.conv2d(t, prewitt.t().reshape(1, 1, 3, 3))
        return torch.sqrt(gx**2 + gy**2)

    ga, gb = magnitude(a), magnitude(b)
    similarity = (2 * ga * gb + GMSD_C) / (ga**2 + gb**2 + GMSD_C)
    return float(similarity.std(unbiased=False))


def chroma_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """FSIMc's I/Q chrominance similarity of two RGB images (0..255), 0..1."""
    if a.ndim == 2 or b.ndim == 2:
        return 1.0 if a.ndim == b.ndim else 0.0

    def iq(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rgb = x.astype(np.float64)
        i = 0.596 * rgb[..., 0] - 0.274 * rgb[..., 1] - 0.322 * rgb[..., 2]
        q = 0.211 * rgb[..., 0] - 0.523 * rgb[..., 1] + 0.312 * rgb[..., 2]
        return i, q

    (ia, qa), (ib, qb) = iq(a), iq(b)
    s_i = (2 * ia * ib + CHROMA_T) / (ia**2 + ib**2 + CHROMA_T)
    s_q = (2 * qa * qb + CHROMA_T) / (qa**2 + qb**2 + CHROMA_T)
    # each clipped at 0 first: two opposite hues would otherwise multiply to a positive value
    return float((np.clip(s_i, 0.0, 1.0) * np.clip(s_q, 0.0, 1.0)).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def weak_label_v0(distorted: np.ndarray, reference: np.ndarray) -> float:
    structural = ssim(luma(distorted), luma(reference))
    fidelity = psnr(distorted.astype(np.float64), reference.astype(np.float64))
    return 100.0 * (0.5 * structural + 0.5 * float(np.clip((fidelity - 10) / 40, 0, 1)))


def weak_label_v1(distorted: np.ndarray, reference: np.ndarray) -> float:
    y_d, y_r = luma(distorted), luma(reference)
    gradient = 1.0 - min(gmsd(y_d, y_r) / GMSD_WORST, 1.0)
    colour = chroma_similarity(distorted, reference)
    return 100.0 * (0.4 * ms_ssim(y_d, y_r) + 0.4 * gradient + 0.2 * colour)


LABELS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "weak-v0": weak_label_v0,
    "weak-v1": weak_label_v1,
}


def weak_label(
    distorted: np.ndarray, reference: np.ndarray, version: str = WEAK_LABEL_VERSION
) -> float:
    """The ``version`` label of a distorted image against its reference (RGB uint8 arrays)."""
    return LABELS[version](distorted, reference)
