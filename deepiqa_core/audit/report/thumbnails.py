"""Pictures for the page: thumbnails, quality maps sized for it, ``data:`` URIs."""

from __future__ import annotations

import base64
import io
import warnings
from typing import Any

from PIL import Image, ImageOps

THUMBNAIL_SIZE = 144
# Quality maps are drawn at the image's full size; past this width they are shrunk for the page.
MAP_MAX_WIDTH = 800  # wider maps are re-encoded (JPEG) to this width for the page
MAP_MIN_WIDTH = 800  # ... and narrower ones are zoomed (x2) towards this
# A map's PNG (crisp labels) is kept up to this size; a photo-like map compresses badly as PNG
# (200 KB for one 512 px image), so beyond it the map goes in as JPEG.
MAP_PNG_BYTES = 60_000
MAP_JPEG_QUALITY = 75
THUMBNAIL_QUALITY = 70  # ~5 KB for a 144 px thumbnail: 30 images' report stays ~300 KB
_SNIFF = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def thumbnail(data: bytes, size: int = THUMBNAIL_SIZE) -> bytes | None:
    """A JPEG (``THUMBNAIL_QUALITY``) of the image fitted into ``size`` x ``size``; None if it
    cannot be read.

    Runs on the driver for a few dozen images, so it must never raise: undecodable bytes, and
    images over Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, checked from the
    header before any pixel is decoded), give None and the gallery shows why.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # refused below
            image: Image.Image = Image.open(io.BytesIO(data))
            limit = Image.MAX_IMAGE_PIXELS
            if limit and image.width * image.height > limit:
                return None
            image.draft("RGB", (size, size))  # JPEG: decode at 1/2..1/8 scale, much cheaper
            image = ImageOps.exif_transpose(image)
            image = _flat_rgb(image)
            image.thumbnail((size, size), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
            return buf.getvalue()
    except Exception:  # noqa: BLE001 - any decoder failure means "no thumbnail", never a crash
        return None


def _flat_rgb(image: Image.Image) -> Image.Image:
    """RGB for a JPEG: alpha composited onto white (as viewers show it), 16-bit grey scaled."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 257).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def _page_map(png: bytes) -> tuple[bytes | None, int, int, int]:
    """The map for the page and its display size: a map wider than MAP_MAX_WIDTH re-encoded
    smaller (a 4000 px photo's map is ~12000 px wide unless drawn with ``max_width``), a small
    one shown at an integer zoom so its labels stay crisp. Returns (bytes, display width,
    display height, zoom); None bytes when it cannot be read (never a huge blob in the page)."""
    try:
        with warnings.catch_warnings():  # our own picture: a bomb warning is only noise
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(png))
        with image:
            width, height = image.size
            zoom = max(1, min(round(MAP_MIN_WIDTH / width), 2)) if width <= MAP_MAX_WIDTH else 1
            if width <= MAP_MAX_WIDTH and len(png) <= MAP_PNG_BYTES:
                return png, width * zoom, height * zoom, zoom
            if width > MAP_MAX_WIDTH:
                height = max(1, round(height * MAP_MAX_WIDTH / width))
                width = MAP_MAX_WIDTH
                image = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            image.convert("RGB").save(buf, format="JPEG", quality=MAP_JPEG_QUALITY)
            return buf.getvalue(), width * zoom, height * zoom, zoom
    except Exception:  # noqa: BLE001 - unreadable or over Pillow's bomb limit: a placeholder
        return None, 0, 0, 1


def _data_uri(data: Any) -> str | None:
    """``data:`` URI for PNG/JPEG/GIF/WebP bytes; None for anything a browser may not show."""
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    data = bytes(data)
    mime = next((m for magic, m in _SNIFF if data.startswith(magic)), None)
    if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
