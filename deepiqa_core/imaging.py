"""Bytes -> RGB uint8 array, by one documented rule for every pixel format.

The rule (also in README "Images and patches"):

* EXIF orientation is applied (the image is scored the way viewers show it).
* Multi-frame files (GIF, TIFF, WebP …): the first frame.
* Grayscale (``1``, ``L``): replicated to three channels.
* 16/32-bit integer grayscale (``I;16*``, ``I``): values are taken as 16-bit and scaled to 8 bits
  by ``round(v / 257)`` (0..65535 -> 0..255), then replicated.
* Palette (``P``): expanded; if it has transparency it is treated as RGBA.
* Alpha (``RGBA``, ``LA``, ``PA``): composited onto a white background (what most viewers show;
  dropping alpha would expose arbitrary colours under fully transparent pixels).
* CMYK, YCbCr, LAB, HSV: Pillow's conversion to RGB. Embedded ICC profiles are not applied.
* Float images (``F``) have no agreed range and are refused (``unsupported_image``).

Decoders: baseline and progressive JPEGs in RGB or grayscale without an EXIF rotation (most
photos) are decoded by ``simplejpeg`` (libjpeg-turbo, releasing the GIL for the whole decode, so
decoder threads scale with cores: 1.3-1.9x Pillow's throughput on 2 threads here; from 1 to 8
threads on a 16-core host simplejpeg scaled 6.2x, Pillow 2.4x); the pixels are
the same as Pillow's (both use libjpeg-turbo's default IDCT and upsampling; tests compare them).
Anything else, and any JPEG simplejpeg refuses (its strict mode fails on corrupt data), goes
through Pillow, so errors and odd files keep Pillow's behaviour.

The pixel limit is checked from the header before any pixel is decoded, so a decompression bomb
costs nothing but the header read. Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``, an error
above twice its value, ~179 MP by default) still applies on top and maps to the same error.
"""

from __future__ import annotations

import io
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

try:
    import simplejpeg
except ImportError:  # no wheel for this platform: Pillow decodes JPEGs too, only slower
    simplejpeg = None

from .errors import (
    ImageDecodeError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedImageError,
)
from .models import PATCH_SIZE

DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: a 10k x 10k scan passes, a 1 GB bomb does not.
_WHITE = (255, 255, 255)
# A broken EXIF block is skipped (as viewers do) and must not print a warning per image. A
# module-level filter, because warnings.catch_warnings is not thread-safe and decoding is
# threaded; it matches only Pillow's EXIF messages.
warnings.filterwarnings("ignore", message=r"(Possibly )?[Cc]orrupt EXIF", category=UserWarning)


def _open(data: bytes) -> Image.Image:
    """Pillow's lazy open (header only), with its failures mapped to typed errors."""
    if not data:
        raise ImageDecodeError("empty input: 0 bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(str(exc)) from exc
    except UnidentifiedImageError as exc:  # its message names a memory address: not stable
        raise ImageDecodeError("not an image format Pillow can read") from exc
    except Exception as exc:  # Pillow raises many types for unreadable bytes
        raise ImageDecodeError(f"not a readable image ({type(exc).__name__}: {exc})") from exc


def decode_image(
    data: bytes,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    min_side: int = PATCH_SIZE,
) -> np.ndarray:
    """Decode image bytes to an (H, W, 3) uint8 RGB array, or raise a typed ``DeepIQAError``."""
    img = _open(data)
    width, height = img.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(
            f"{width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}"
        )
    rgb = _fast_jpeg(img, data)
    if rgb is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img.load()
                img = ImageOps.exif_transpose(img)
        except Exception as exc:
            raise ImageDecodeError(
                f"corrupt or truncated image ({type(exc).__name__}: {exc})"
            ) from exc
        rgb = to_rgb(img)
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        raise ImageTooSmallError(f"{w}x{h} is smaller than {min_side}x{min_side}")
    return rgb


def _fast_jpeg(img: Image.Image, data: bytes) -> np.ndarray | None:
    """The RGB pixels through simplejpeg where the module docstring says so, else None."""
    if simplejpeg is None or img.format != "JPEG" or img.mode not in ("RGB", "L"):
        return None
    try:
        if img.getexif().get(0x0112, 1) != 1:  # rotations: Pillow's exif_transpose applies them
            return None
        if img.mode == "RGB":
            return simplejpeg.decode_jpeg(data, colorspace="RGB")
        return np.repeat(simplejpeg.decode_jpeg(data, colorspace="GRAY"), 3, axis=2)
    except Exception:  # refused or corrupt: Pillow decides (and names the error)
        return None


def image_size(data: bytes) -> tuple[int, int]:
    """(height, width) that ``decode_image`` would return, read from the header alone.

    EXIF orientations 5-8 (quarter turns) swap the two, as ``decode_image`` applies them.
    """
    img = _open(data)
    width, height = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block: decode_image's transpose would skip it too
        orientation = 1
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def to_rgb(img: Image.Image) -> np.ndarray:
    """Apply the module's colour rule to a loaded Pillow image; returns (H, W, 3) uint8."""
    mode = img.mode
    if mode == "F":
        raise UnsupportedImageError("32-bit float images have no defined range; convert them first")
    if mode.startswith("I"):
        values = np.asarray(img, dtype=np.float64)
        gray = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE + (255,))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)  # a writable copy (Pillow buffers are read-only)


def read_image(path: str | Path, **kwargs: object) -> np.ndarray:
    """Read and decode a local file (``FileNotFoundError`` for a missing one)."""
    return decode_image(Path(path).read_bytes(), **kwargs)  # type: ignore[arg-type]


T = TypeVar("T")
Decoded = np.ndarray | Exception


def default_decode_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def decode_in_order(
    items: Iterable[T],
    load: Callable[[T], np.ndarray],
    workers: int | None = None,
    *,
    max_pending_bytes: int | None = None,
) -> Iterator[tuple[T, Decoded]]:
    """``(item, image or the exception load raised)`` for every item, in input order.

    Decoding is the serial part of scoring (a 512x384 JPEG takes ~3 ms; a GPU scores an image
    in ~0.5 ms), and Pillow releases the GIL while it decodes, so a few threads keep the
    network fed. Read-ahead is bounded: at most ``4 x workers`` items ahead, ``2 x workers``
    queued or decoding, and, with ``max_pending_bytes``, a new item starts only while the
    decoded-but-not-taken images plus those queued or being decoded (each counted as the largest
    seen so far) stay within that many bytes; so a folder of 300 MB images holds one or two of them,
    not ``4 x workers``.
    """
    workers = workers or default_decode_workers()

    def attempt(item: T) -> Decoded:
        try:
            return load(item)
        except Exception as exc:  # returned, not raised: one bad file never stops the rest
            return exc

    if workers == 1:
        for item in items:
            yield item, attempt(item)
        return
    largest = 0  # bytes of the largest image decoded so far

    def room(window: deque[tuple[T, Future[Decoded]]]) -> bool:
        """Whether one more item may start: a free worker, and the bytes budget allows it."""
        nonlocal largest
        if len(window) >= 4 * workers:
            return False
        done_bytes, running = 0, 0
        for _, future in window:
            if future.done():
                size = getattr(future.result(), "nbytes", 0)
                largest = max(largest, size)
                done_bytes += size
            else:
                running += 1
        # a queue as deep again keeps the workers busy while the caller uses an image; until
        # one image's size is known, only as many as there are workers
        if running >= (2 * workers if largest else workers):
            return False
        if max_pending_bytes is None:
            return True
        return done_bytes + (running + 1) * largest <= max_pending_bytes

    with ThreadPoolExecutor(workers, thread_name_prefix="deepiqa-decode") as pool:
        window: deque[tuple[T, Future[Decoded]]] = deque()
        for item in items:
            while window and not room(window):
                head, future = window.popleft()
                yield head, future.result()
            window.append((item, pool.submit(attempt, item)))
        while window:
            head, future = window.popleft()
            yield head, future.result()
