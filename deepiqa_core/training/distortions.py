"""KADID-10k-style synthetic distortions, five levels each, made offline with numpy and Pillow.

A first subset of KADID's 25 types (names follow KADID); level 1 is mildest, 5 strongest.
Every function maps an (H, W, 3) uint8 image and a level to a new uint8 image, deterministically
for a given ``numpy.random.Generator``.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

LEVELS = (1, 2, 3, 4, 5)
Distortion = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def gaussian_blur(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    radius = (0.5, 1.0, 2.0, 3.0, 5.0)[level - 1]
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def jpeg(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    quality = (43, 36, 24, 7, 4)[level - 1]
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


def color_saturation(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    factor = (0.7, 0.5, 0.3, 0.15, 0.0)[level - 1]
    return np.asarray(ImageEnhance.Color(Image.fromarray(img)).enhance(factor))


def pixelate(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    factor = (2, 3, 4, 6, 9)[level - 1]
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((max(1, w // factor), max(1, h // factor)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST))


def quantization(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    steps = (32, 16, 10, 6, 4)[level - 1]
    q = np.floor(img / 256.0 * steps)
    return _u8((q + 0.5) * 256.0 / steps)


def high_sharpen(img: np.ndarray, level: int, rng: np.random.Generator) -> np.ndarray:
    percent = (100, 200, 350, 550, 800)[level - 1]
    sharp = Image.fromarray(img).filter(ImageFilter.UnsharpMask(radius=2, percent=percent))
    return np.asarray(sharp)


DISTORTIONS: dict[str, Distortion] = {
    "gaussian_blur": gaussian_blur,
    "jpeg": jpeg,
    "white_noise": white_noise,
    "impulse_noise": impulse_noise,
    "multiplicative_noise": multiplicative_noise,
    "brighten": brighten,
    "darken": darken,
    "mean_shift": mean_shift,
    "contrast_change": contrast_change,
    "color_saturation": color_saturation,
    "pixelate": pixelate,
    "quantization": quantization,
    "high_sharpen": high_sharpen,
}


def distort(img: np.ndarray, kind: str, level: int, rng: np.random.Generator) -> np.ndarray:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    return np.ascontiguousarray(DISTORTIONS[kind](img, level, rng), dtype=np.uint8)
