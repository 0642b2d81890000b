"""Re-create the bundled sample images (deepiqa_core/samples) from scikit-image's data folder.

Provenance script, run by hand once; the outputs are committed. Usage:

    pip download --no-deps scikit-image && unzip -o scikit_image-*.whl 'skimage/data/*'
    python scripts/make_samples.py skimage/data deepiqa_core/samples

Sources and licences: astronaut.png and rocket.jpg are public domain (NASA; SpaceX), chelsea.png
and coffee.png are CC0 (Stefan van der Walt; Rachel Michetti). Distorted versions are derived here
with Pillow and numpy at fixed seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

LONG_SIDE = 320


def _load(src: Path, name: str) -> Image.Image:
    img = Image.open(src / name).convert("RGB")
    scale = LONG_SIDE / max(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)


def _noise(img: Image.Image, sigma: float, seed: int) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    noisy = arr + np.random.default_rng(seed).normal(0, sigma, arr.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def main(src: Path, dst: Path) -> None:
    nr, ref, dist = dst / "nr", dst / "fr" / "reference", dst / "fr" / "distorted"
    for d in (nr, ref, dist):
        d.mkdir(parents=True, exist_ok=True)
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg"):
        _load(src, name).save(nr / f"{Path(name).stem}.jpg", quality=90)
    for i, name in enumerate(("chelsea.png", "coffee.png")):
        stem = Path(name).stem
        img = _load(src, name)
        img.save(ref / f"{stem}.png")
        img.save(dist / f"{stem}__jpeg_q10.jpg", quality=10)
        img.filter(ImageFilter.GaussianBlur(2.0)).save(dist / f"{stem}__blur_2.png")
        _noise(img, 20.0, seed=i).save(dist / f"{stem}__noise_20.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
