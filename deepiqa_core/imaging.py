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
import threading
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
R = TypeVar("R")


def default_decode_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class DecodeGate:
    """Admits decodes in input order while the decoded bytes held stay within ``limit``.

    A worker asks ``admit(ticket, nbytes)`` after reading an image's header (so the size is
    known before any pixel is decoded); it waits for its turn (input order, so an item behind
    the one the caller waits for can never take the room first) and for room: the bytes
    admitted and not yet released plus its own within ``limit``, or nothing else admitted (an
    image larger than the whole budget is decoded alone). Bytes are released when the caller
    takes the image, or at once when its decode fails.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.turn, self.peak = limit, 0, 0, 0
        self._cv = threading.Condition()

    def admit(self, ticket: int, nbytes: int, *, wait_for_room: bool = True) -> None:
        with self._cv:
            self._cv.wait_for(
                lambda: (
                    self.turn == ticket
                    and (not wait_for_room or self.used == 0 or self.used + nbytes <= self.limit)
                )
            )
            self.used += nbytes
            self.peak = max(self.peak, self.used)
            self.turn += 1
            self._cv.notify_all()

    def release(self, nbytes: int) -> None:
        with self._cv:
            self.used -= nbytes
            self._cv.notify_all()


Admit = Callable[[int], None]


def decode_in_order(
    items: Iterable[T],
    load: Callable[[T, Admit], R],
    workers: int | None = None,
    *,
    max_pending_bytes: int | None = None,
    gate: DecodeGate | None = None,
) -> Iterator[tuple[T, R | Exception]]:
    """``(item, what load returned or the exception it raised)`` for every item, in input order.

    Decoding is the serial part of scoring (a 512x384 JPEG takes ~3 ms; a GPU scores an image
    in ~0.5 ms), and Pillow releases the GIL while it decodes, so a few threads keep the
    network fed. Read-ahead is bounded: at most ``4 x workers`` items ahead and ``2 x workers``
    queued or decoding; with ``max_pending_bytes``, ``load(item, admit)`` calls ``admit(nbytes)``
    with the decoded size it read from the header before it decodes, and a ``DecodeGate``
    holds it until the images decoded and not yet taken leave room (so 16 PNGs of 300 MB each
    are decoded one or two at a time, whatever the worker count). A load that never calls
    ``admit`` is counted by its result's size once done.
    """
    workers = workers or default_decode_workers()
    if workers == 1:  # one at a time already: nothing is decoded ahead
        for item in items:
            try:
                yield item, load(item, lambda nbytes: None)
            except Exception as exc:  # returned, not raised: one bad file never stops the rest
                yield item, exc
        return
    gate = gate or (DecodeGate(max_pending_bytes) if max_pending_bytes is not None else None)

    def take(window: deque[tuple[T, Future[tuple[R | Exception, int]]]]) -> tuple[T, R | Exception]:
        head, future = window.popleft()
        out, admitted = future.result()
        if gate is not None:
            gate.release(admitted)
        return head, out

    pool = _decode_pool(workers)
    window: deque[tuple[T, Future[tuple[R | Exception, int]]]] = deque()
    try:
        for ticket, item in enumerate(items):
            while len(window) >= 4 * workers or sum(not f.done() for _, f in window) >= 2 * workers:
                yield take(window)
            window.append((item, pool.submit(_attempt, load, gate, ticket, item)))
        while window:
            yield take(window)
    finally:  # a caller that stops early: the loads not started yet are dropped
        for _, future in window:
            future.cancel()


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _decode_pool(workers: int) -> ThreadPoolExecutor:
    """This process's decode threads for ``workers``, kept between calls.

    A pool made per call started its threads again for every Arrow batch (64 rows in the
    Spark job): ~0.03 ms per row of thread starts on cheap rows. Sharing is safe for the
    ``DecodeGate``: the pool's queue is first in, first out, so each caller's lowest ticket
    always runs before its later ones.
    """
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="deepiqa-decode")
        return _pools[workers]


def _forget_pools_after_fork() -> None:
    """A forked child has none of its parent's threads: its pools are made anew (a copied
    executor would count threads that do not exist and never run a load)."""
    global _pools_lock
    _pools.clear()
    _pools_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def _attempt(
    load: Callable[[T, Admit], R], gate: DecodeGate | None, ticket: int, item: T
) -> tuple[R | Exception, int]:
    """One load on a decode thread: (its result or exception, the bytes it holds in the gate).
    ``admit`` waits for the gate's room in ticket order; a load that fails or never admits
    still passes its turn on, so the tickets after it are not held up."""
    admitted: int | None = None

    def admit(nbytes: int) -> None:
        nonlocal admitted
        if gate is not None:
            gate.admit(ticket, nbytes)
        admitted = nbytes

    try:
        out = load(item, admit)
    except Exception as exc:  # returned, not raised: one bad file never stops the rest
        if gate is not None:
            if admitted is None:
                gate.admit(ticket, 0, wait_for_room=False)  # pass its turn on
            else:
                gate.release(admitted)
        return exc, 0
    if admitted is None:
        admitted = int(getattr(out, "nbytes", 0))
        if gate is not None:
            gate.admit(ticket, admitted, wait_for_room=False)
    return out, admitted
