"""Typed errors with stable codes.

Every failure a user can cause carries a short, stable ``code`` (``decode_error``, ``too_small`` …)
so that batch jobs can put it in an output row and alert on it without parsing free text.
"""

from __future__ import annotations

MAX_MESSAGE = 500


def error_fields(exc: BaseException) -> tuple[str, str]:
    """(code, message) for an output row: typed errors keep theirs, anything else is internal."""
    code = exc.code if isinstance(exc, DeepIQAError) else "internal"
    message = str(exc) if isinstance(exc, DeepIQAError) else f"{type(exc).__name__}: {exc}"
    return code, message[:MAX_MESSAGE]


class DeepIQAError(Exception):
    """Base class; ``code`` is stable across releases, the message is for people."""

    code = "internal"


class MissingInputError(DeepIQAError):
    """The file or object does not exist."""

    code = "missing"


class AccessDeniedError(DeepIQAError):
    """The file or object exists (or may exist) but may not be read."""

    code = "access_denied"


class ReadError(DeepIQAError):
    """Any other failure to read the bytes (network, throttling after retries, I/O)."""

    code = "read_error"


class ImageDecodeError(DeepIQAError):
    """The bytes are empty, truncated, corrupt or not an image format Pillow can read."""

    code = "decode_error"


class UnsupportedImageError(DeepIQAError):
    """The image decoded but its pixel format has no documented RGB rule (e.g. float TIFF)."""

    code = "unsupported_image"


class ImageTooSmallError(DeepIQAError):
    """A side is shorter than one 32-pixel patch, so not a single patch can be cut."""

    code = "too_small"


class ImageTooLargeError(DeepIQAError):
    """More pixels than the configured limit (decompression-bomb guard); checked before decoding."""

    code = "too_large"


class SizeMismatchError(DeepIQAError):
    """A full-reference pair whose distorted and reference images differ in size."""

    code = "size_mismatch"


class UnpairedError(DeepIQAError):
    """A distorted image whose reference could not be found (full reference)."""

    code = "unpaired"


class WeightsError(DeepIQAError):
    """A weights file that is missing keys, has wrong shapes or unreadable metadata."""

    code = "bad_weights"
