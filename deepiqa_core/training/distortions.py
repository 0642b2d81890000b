"""KADID-10k-style synthetic distortions: KADID's 25 types x 5 levels, made offline.

Names and order follow KADID-10k (``deepiqa_core.datasets.kadid.KADID_TYPES``); level 1 is
mildest, 5 strongest. Every function maps an (H, W, 3) uint8 image and a level to a new uint8
image, deterministically for a given ``numpy.random.Generator``. Parameters are ours, chosen to
span visibly mild to severe at 384-512 px; where KADID used something unavailable offline a
stand-in is named: ``denoise`` uses a median filter on a noisy image (KADID: DnCNN), and
``non_eccentricity_patch``/``color_block`` scale their patch counts with image area.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from ..datasets.kadid import KADID_TYPES

LEVELS = (1, 2, 3, 4, 5)
Distortion = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def gaussian_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    radius = (0.5, 1.0, 2.0, 3.0, 5.0)[level - 1]
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def jpeg(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    return jpeg_at_quality(img, (43, 36, 24, 7, 4)[level - 1])


def jpeg_at_quality(img: np.ndarray, quality: int) -> np.ndarray:
    """The pixels after a round trip through Pillow's JPEG encoder at ``quality`` (also the
    evaluation's JPEG ladders)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def white_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    sigma = (4.0, 8.0, 16.0, 28.0, 45.0)[level - 1]
    return _u8(img + rng.normal(0, sigma, img.shape))


def impulse_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    p = (0.01, 0.03, 0.06, 0.12, 0.2)[level - 1]
    out = img.copy()
    mask = rng.random(img.shape[:2])
    out[mask < p / 2] = 0
    out[(mask >= p / 2) & (mask < p)] = 255
    return out


def multiplicative_noise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    sigma = (0.05, 0.1, 0.2, 0.3, 0.45)[level - 1]
    return _u8(img * (1 + rng.normal(0, sigma, img.shape)))


def brighten(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    gamma = (0.85, 0.7, 0.55, 0.4, 0.28)[level - 1]
    return _u8(255 * (img / 255.0) ** gamma)


def darken(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    gamma = (1.2, 1.5, 1.9, 2.5, 3.3)[level - 1]
    return _u8(255 * (img / 255.0) ** gamma)


def mean_shift(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    shift = (15, 30, 50, 75, 100)[level - 1] * (1 if rng.random() < 0.5 else -1)
    return _u8(img.astype(np.float64) + shift)


def contrast_change(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    factor = (0.8, 0.6, 0.45, 0.3, 0.15)[level - 1]
    return np.asarray(ImageEnhance.Contrast(Image.fromarray(img)).enhance(factor))


def color_saturation_1(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Desaturation: the HSV saturation channel scaled down."""
    factor = (0.6, 0.4, 0.25, 0.1, 0.0)[level - 1]
    h, sat, v = Image.fromarray(img).convert("HSV").split()
    sat = sat.point(lambda x: round(x * factor))
    return np.asarray(Image.merge("HSV", (h, sat, v)).convert("RGB"))


def color_saturation_2(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Over-saturation: the Lab colour channels a*, b* scaled up."""
    factor = (1.5, 2.0, 3.0, 4.5, 6.5)[level - 1]
    lab = rgb_to_lab(img)
    lab[..., 1:] *= factor
    return lab_to_rgb(lab)


def pixelate(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    factor = (2, 3, 4, 6, 9)[level - 1]
    h, w = img.shape[:2]
    size = (max(1, w // factor), max(1, h // factor))
    small = Image.fromarray(img).resize(size, Image.Resampling.BOX)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))


def quantization(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    steps = (32, 16, 10, 6, 4)[level - 1]
    q = np.floor(img / 256.0 * steps)
    return _u8((q + 0.5) * 256.0 / steps)


def high_sharpen(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    percent = (100, 200, 350, 550, 800)[level - 1]
    sharp = Image.fromarray(img).filter(ImageFilter.UnsharpMask(radius=2, percent=percent))
    return np.asarray(sharp)


# --- colour spaces (sRGB, D65) ---------------------------------------------------------------
_M = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE = np.array([0.95047, 1.0, 1.08883])


def rgb_to_lab(img: np.ndarray) -> np.ndarray:
    c = img.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _M.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1
    )


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _WHITE
    linear = np.clip(xyz @ np.linalg.inv(_M).T, 0, 1)
    c = np.where(linear <= 0.0031308, linear * 12.92, 1.055 * linear ** (1 / 2.4) - 0.055)
    return _u8(c * 255)


def _filter(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Per-channel 2-D convolution of (H, W, C) floats with edge padding (torch: fast, here)."""
    import torch
    import torch.nn.functional as F

    kh, kw = kernel.shape
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[:, None]
    t = F.pad(t, (kw // 2, kw - 1 - kw // 2, kh // 2, kh - 1 - kh // 2), mode="replicate")
    k = torch.from_numpy((kernel / kernel.sum()).astype(np.float32))[None, None]
    return F.conv2d(t, k)[:, 0].permute(1, 2, 0).numpy().astype(np.float64)


def _convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return _u8(_filter(img, kernel))


def _gaussian_kernel(sigma: float) -> np.ndarray:
    r = np.arange(-int(3 * sigma + 0.5), int(3 * sigma + 0.5) + 1)
    g = np.exp(-(r**2) / (2 * sigma**2))
    return np.outer(g, g)


def lens_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Defocus: a uniform disk kernel."""
    radius = (1, 2, 4, 6, 8)[level - 1]
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return _convolve(img, (xx**2 + yy**2 <= radius**2 + 0.5).astype(np.float64))


def motion_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """A straight camera shake: a line kernel of the level's length at a random angle."""
    length = (3, 5, 9, 13, 21)[level - 1]
    angle = rng.uniform(0, np.pi)
    kernel = np.zeros((length, length))
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        y = int(round(length // 2 + t * np.sin(angle)))
        x = int(round(length // 2 + t * np.cos(angle)))
        kernel[y, x] = 1.0
    return _convolve(img, kernel)


def color_diffusion(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Colour bleeding: the Lab a*, b* channels blurred, lightness kept."""
    sigma = (1.0, 3.0, 6.0, 8.0, 12.0)[level - 1]
    lab = rgb_to_lab(img)
    lab[..., 1:] = _filter(lab[..., 1:], _gaussian_kernel(sigma))
    return lab_to_rgb(lab)


def color_shift(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Misregistered colour: the green channel shifted in a random direction."""
    amount = (1, 3, 6, 8, 12)[level - 1]
    angle = rng.uniform(0, 2 * np.pi)
    dy, dx = int(round(amount * np.sin(angle))), int(round(amount * np.cos(angle)))
    h, w = img.shape[:2]
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    out = img.copy()
    out[..., 1] = img[ys][:, xs, 1]
    return out


def color_quantization(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """A palette of few colours (median cut) with Floyd-Steinberg dithering."""
    colors = (64, 48, 32, 16, 8)[level - 1]
    pal = Image.fromarray(img).quantize(
        colors, Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
    )
    return np.asarray(pal.convert("RGB"))


def jpeg2000(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    ratio = (20, 50, 100, 200, 400)[level - 1]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio])
    return np.asarray(Image.open(buf).convert("RGB"))


def white_noise_color(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise in the chroma channels (YCbCr Cb, Cr) only."""
    sigma = (4.0, 8.0, 14.0, 22.0, 35.0)[level - 1]
    ycc = np.asarray(Image.fromarray(img).convert("YCbCr")).astype(np.float64)
    ycc[..., 1:] += rng.normal(0, sigma, ycc[..., 1:].shape)
    return np.asarray(Image.fromarray(_u8(ycc), mode="YCbCr").convert("RGB"))


def denoise(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Denoising artefacts: white noise removed by a median filter (KADID: DnCNN)."""
    sigma, size = ((8.0, 3), (14.0, 3), (20.0, 5), (30.0, 5), (45.0, 7))[level - 1]
    noisy = _u8(img + rng.normal(0, sigma, img.shape))
    return np.asarray(Image.fromarray(noisy).filter(ImageFilter.MedianFilter(size)))


def jitter(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Every pixel taken from a random nearby position."""
    amount = (1, 2, 3, 4, 6)[level - 1]
    h, w = img.shape[:2]
    ys = np.clip(np.arange(h)[:, None] + rng.integers(-amount, amount + 1, (h, w)), 0, h - 1)
    xs = np.clip(np.arange(w)[None, :] + rng.integers(-amount, amount + 1, (h, w)), 0, w - 1)
    return img[ys, xs]


def _count(img: np.ndarray, per_512x384: int, level: int) -> int:
    """A count that scales with image area, at least ``level`` (so small images get worse too)."""
    h, w = img.shape[:2]
    return max(level, round(per_512x384 * h * w / (512 * 384)))


def non_eccentricity_patch(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Small patches replaced by copies of nearby patches (misplaced texture)."""
    patches = (20, 40, 60, 80, 100)[level - 1]
    size = 16
    h, w = img.shape[:2]
    out = img.copy()
    for _ in range(_count(img, patches, level)):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        sy = int(np.clip(y + rng.integers(-size, size + 1), 0, h - size))
        sx = int(np.clip(x + rng.integers(-size, size + 1), 0, w - size))
        out[y : y + size, x : x + size] = img[sy : sy + size, sx : sx + size]
    return out


def color_block(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Solid blocks of random colour pasted at random places."""
    blocks = (2, 4, 6, 8, 10)[level - 1]
    size = 32
    h, w = img.shape[:2]
    out = img.copy()
    for _ in range(_count(img, blocks, level)):
        y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        out[y : y + size, x : x + size] = rng.integers(0, 256, 3)
    return out


DISTORTIONS: dict[str, Distortion] = {
    name: globals()[name] for name in KADID_TYPES
}  # KADID's order; every name is a function above


# --- what a media library really has (beyond KADID) -------------------------------------------
# KADID's ``jpeg`` spans qualities 43..4 only; libraries hold mostly q 95..30, re-saved copies,
# thumbnails scaled back up and WebP. These types train the ordering a library audit needs.
def _resize_back(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize(
        (max(1, round(w / factor)), max(1, round(h / factor))), Image.Resampling.BICUBIC
    )
    return np.asarray(small.resize((w, h), Image.Resampling.BICUBIC))


def jpeg_quality(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """One JPEG save at the qualities libraries hold (90 .. 15)."""
    return jpeg_at_quality(img, (90, 70, 50, 30, 15)[level - 1])


def double_jpeg(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """A q90 file re-saved at a lower quality (a download re-uploaded), the second save's grid
    shifted by a random crop of 0..7 px put back in place."""
    first = jpeg_at_quality(img, 90)
    dy, dx = (int(v) for v in rng.integers(0, 8, 2))
    out = first.copy()
    out[dy:, dx:] = jpeg_at_quality(first[dy:, dx:], (80, 60, 40, 25, 12)[level - 1])
    return out


def rescale(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """A thumbnail scaled back up (bicubic both ways)."""
    return _resize_back(img, (1.5, 2.0, 3.0, 4.0, 6.0)[level - 1])


def rescale_jpeg(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    """Scaled down by 2, saved as JPEG, scaled back up: a re-encoded thumbnail."""
    h, w = img.shape[:2]
    small = np.asarray(
        Image.fromarray(img).resize((max(1, w // 2), max(1, h // 2)), Image.Resampling.BICUBIC)
    )
    small = jpeg_at_quality(small, (90, 70, 50, 30, 15)[level - 1])
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def webp(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="WEBP", quality=(80, 60, 40, 20, 5)[level - 1])
    return np.asarray(Image.open(buf).convert("RGB"))


MEDIA_DISTORTIONS: dict[str, Distortion] = {
    f.__name__: f for f in (jpeg_quality, double_jpeg, rescale, rescale_jpeg, webp)
}
ALL_DISTORTIONS: dict[str, Distortion] = DISTORTIONS | MEDIA_DISTORTIONS


def distort(img: np.ndarray, kind: str, level: int, rng: np.random.Generator) -> np.ndarray:
    """``img`` with distortion ``kind`` (a KADID type or a media-library type) at ``level``."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    return np.ascontiguousarray(ALL_DISTORTIONS[kind](img, level, rng), dtype=np.uint8)
