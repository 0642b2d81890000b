"""Every exception deepiqa raises on purpose, in one place: typed errors with stable codes, and
the user's mistakes (``UsageError``: exit code 2, before any work).

Every failure a user can cause carries a short, stable ``code`` (``decode_error``, ``too_small`` …)
so that batch jobs can put it in an output row and alert on it without parsing free text.
``ROW_ERROR_CODES`` is the table of the codes a scored row can carry (README, ``--help`` and the
tests read it from here). A reference that fails gets the same code with ``ref_`` in front and its
URI in the message, so a bad reference never looks like a bad distorted image.
"""

from __future__ import annotations

MAX_MESSAGE = 500


def error_fields(exc: BaseException) -> tuple[str, str]:
    """(code, message) for an output row: typed errors keep theirs, anything else is internal."""
    code = exc.code if isinstance(exc, DeepIQAError) else "internal"
    message = str(exc) if isinstance(exc, DeepIQAError) else f"{type(exc).__name__}: {exc}"
    return code, message[:MAX_MESSAGE]


class UsageError(ValueError):
    """A mistake in what the user asked for, found after argument parsing (exit code 2)."""


class OutputExistsError(UsageError):
    """The output already exists and the user did not ask to replace it."""


class DeepIQAError(Exception):
    """Base class; ``code`` is stable across releases, the message is for people."""

    code = "internal"


class StateBusyError(DeepIQAError):
    """Another live run holds the folder (its lease is renewed): this run could not start."""

    code = "state_busy"


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


class BadInputError(DeepIQAError):
    """The row itself is unusable: no uri and no bytes, an empty uri."""

    code = "bad_input"


class UnsupportedUriError(DeepIQAError):
    """A URI scheme this library does not read (gs://, hdfs://, http://, file://otherhost/)."""

    code = "unsupported_uri"


class ReadTimeoutError(DeepIQAError):
    """A read that did not finish within the read timeout (stalled mount, FIFO, slow socket)."""

    code = "read_timeout"


class TooManyPatchesError(DeepIQAError):
    """More patches than the per-image cap (``--max-patches``): e.g. a 32 x 3,000,000 strip."""

    code = "too_many_patches"


class NonFiniteScoreError(DeepIQAError):
    """The network gave NaN or infinity for this image (never a silent null score)."""

    code = "non_finite_score"


def reference_error(exc: BaseException, uri: object) -> DeepIQAError:
    """``exc`` of a reference, recoded ``ref_<code>`` with the reference's URI in the message."""
    code, message = error_fields(exc)
    error = DeepIQAError(f"reference {uri or '(bytes)'}: {message}")
    error.code = f"ref_{code}"
    return error


ROW_ERROR_CODES: dict[str, str] = {
    "bad_input": "the row has no uri and no image bytes, or an empty uri",
    "unsupported_uri": "a scheme that is not read (gs://, hdfs://, http://, file://otherhost/)",
    "missing": "no such file or object",
    "access_denied": "the file or object may not be read",
    "read_error": "any other read failure (I/O, a directory, a FIFO, retries exhausted)",
    "read_timeout": "the read took longer than --read-timeout",
    "decode_error": "empty, truncated, corrupt, or not an image",
    "unsupported_image": "decoded, but no RGB rule for its pixel format (e.g. float TIFF)",
    "too_small": "a side under 32 px: not one patch",
    "too_large": "more pixels than --max-pixels, or more bytes than --max-bytes",
    "too_many_patches": "more patches than --max-patches",
    "unpaired": "full reference: no reference for this image",
    "size_mismatch": "full reference: the image and its reference differ in size",
    "ref_<code>": "full reference: the reference failed with <code> (e.g. ref_missing)",
    "non_finite_score": "the network gave NaN or infinity (corrupt weights)",
    "internal": "a bug: the message says what; please report it",
}


class ManifestError(DeepIQAError):
    """A manifest table that exists but cannot be read (corrupt Parquet, unreadable CSV)."""

    code = "bad_manifest"


class AuditStateError(DeepIQAError):
    """A file of an audit state cannot be read (truncated, edited by hand): names the file."""

    code = "bad_audit_state"


class WeightsError(DeepIQAError):
    """A weights file that is missing keys, has wrong shapes or unreadable metadata."""

    code = "bad_weights"
