"""Manifest rows -> training examples: the image bytes (and the reference's) checked to decode.

Used by the Spark job (inside ``mapInPandas``) and by the single-process path alike. A row that
cannot be read or decoded, is smaller than a patch, or whose reference differs in size becomes a
rejected row with an error code; it never stops the preparation of the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import DeepIQAError, SizeMismatchError, UnpairedError, error_fields
from ..imaging import DEFAULT_MAX_PIXELS, decode_image
from ..sources import read_bytes

if TYPE_CHECKING:
    import pandas as pd

# (name, Spark SQL type): the examples table. Manifest columns ride along for evaluation.
EXAMPLE_COLUMNS: list[tuple[str, str]] = [
    ("row_id", "bigint"),
    ("id", "string"),
    ("uri", "string"),
    ("ref_uri", "string"),
    ("ref_id", "string"),
    ("score", "double"),
    ("score_direction", "string"),
    ("dataset", "string"),
    ("distortion", "string"),
    ("level", "int"),
    ("image", "binary"),
    ("ref_image", "binary"),
    ("error_code", "string"),
    ("error_message", "string"),
]


def _checked(uri: str, max_pixels: int) -> tuple[bytes, tuple[int, int]]:
    data = read_bytes(uri)
    image = decode_image(data, max_pixels=max_pixels)  # a full decode: truncated files fail here
    return data, (image.shape[0], image.shape[1])


def fetch_examples(
    frame: pd.DataFrame, full_reference: bool, max_pixels: int = DEFAULT_MAX_PIXELS
) -> pd.DataFrame:
    """Rows with ``row_id`` + manifest columns -> ``EXAMPLE_COLUMNS`` (bytes or an error).

    References are fetched only for full-reference training (an NR model can train on the
    distorted images of an FR dataset), once per distinct reference in ``frame``.
    """
    import pandas as pd

    references: dict[str, tuple[bytes, tuple[int, int]] | DeepIQAError] = {}
    out = []
    for row in frame.to_dict("records"):
        rec = {name: row.get(name) for name, _ in EXAMPLE_COLUMNS}
        rec.update(image=None, ref_image=None, error_code=None, error_message=None)
        try:
            image, shape = _checked(row["uri"], max_pixels)
            ref_uri = row.get("ref_uri")
            if full_reference and not (isinstance(ref_uri, str) and ref_uri):
                raise UnpairedError("full-reference training needs a ref_uri for every row")
            if full_reference:
                if ref_uri not in references:
                    try:
                        references[ref_uri] = _checked(ref_uri, max_pixels)
                    except DeepIQAError as exc:
                        references[ref_uri] = exc
                cached = references[ref_uri]
                if isinstance(cached, DeepIQAError):
                    raise type(cached)(f"reference {ref_uri}: {cached}")
                if cached[1] != shape:
                    raise SizeMismatchError(f"image is {shape}, its reference {cached[1]} (h, w)")
                rec["ref_image"] = cached[0]
            rec["image"] = image
        except Exception as exc:  # noqa: BLE001 - one bad row never stops the rest
            rec["error_code"], rec["error_message"] = error_fields(exc)
        out.append(rec)
    result = pd.DataFrame(out, columns=[name for name, _ in EXAMPLE_COLUMNS])
    result["level"] = result["level"].astype("Int32")
    return result
