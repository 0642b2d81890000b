"""From an ``InputSpec`` to the rows to score, without Spark (``deepiqa score``); the Spark jobs
apply the same rules to DataFrames (``deepiqa_core.spark.inputs``).

The rules shared by both:

* ``check_references``: an FR model needs ``--ref`` or a manifest reference column, an NR model
  takes neither.
* ``manifest_columns``: which manifest columns are the id, the uri, the bytes and the reference;
  the id defaults to the uri, a table of bytes needs ids.
* listing (``deepiqa_core.listing``) and pairing (``deepiqa_core.pairing``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .batch import ImageRow
from .errors import ManifestError, UsageError
from .listing import list_images
from .options import InputSpec, is_manifest
from .pairing import pair_images
from .sources import is_s3, local_path, read_bytes

MAX_MANIFEST_BYTES = 8 * 2**30  # read whole into memory: the CLI is for what fits

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class ManifestColumns:
    """Source column for each role (None: absent)."""

    id: str | None
    uri: str | None
    image: str | None
    ref_uri: str | None
    ref_image: str | None


# a manifest's own column named like an output or role column is passed on with this prefix
MANIFEST_PREFIX = "manifest_"
ROLE_COLUMNS = ("id", "uri", "ref_uri", "image", "ref_image")


def passed_columns(
    columns: Sequence[str],
    cols: ManifestColumns,
    pass_columns: Sequence[str] | None,
    reserved: Iterable[str],
) -> list[tuple[str, str]]:
    """The manifest's own columns copied to the score rows, as (column, output name), in order:
    all but the role columns (``pass_columns`` None) or those named (an unknown name is a usage
    error); one named like a ``reserved`` or role column gets ``MANIFEST_PREFIX``. The Spark and
    Beam jobs both follow this rule."""
    roles = {c for c in (cols.id, cols.uri, cols.image, cols.ref_uri, cols.ref_image) if c}
    others = [c for c in columns if c not in roles]
    if pass_columns is not None:
        unknown = sorted(set(pass_columns) - set(others))
        if unknown:
            raise UsageError(f"--pass-columns: the manifest has no columns {unknown}")
        others = [c for c in others if c in pass_columns]
    clash = set(reserved) | set(ROLE_COLUMNS)
    return [(c, MANIFEST_PREFIX + c if c in clash else c) for c in others]


def manifest_columns(columns: Sequence[str], spec: InputSpec) -> ManifestColumns:
    """Which of a manifest's ``columns`` play which role, or a usage error."""
    present = set(columns)
    uri = spec.uri_column if spec.uri_column in present else None
    image = spec.bytes_column if spec.bytes_column and spec.bytes_column in present else None
    if spec.bytes_column and image is None:
        raise UsageError(f"the manifest has no {spec.bytes_column!r} column (--bytes-column)")
    if uri is None and image is None:
        raise UsageError(f"the manifest has no {spec.uri_column!r} (or bytes) column")
    row_id = spec.id_column if spec.id_column in present else None
    if uri is None and row_id is None:
        raise UsageError(f"a manifest of image bytes needs an {spec.id_column!r} column")
    ref = spec.ref_column if spec.ref_column in present else None
    ref_image = None
    if spec.ref_bytes_column:
        if spec.ref_bytes_column not in present:
            raise UsageError(f"the manifest has no {spec.ref_bytes_column!r} column")
        ref_image = spec.ref_bytes_column
    return ManifestColumns(id=row_id, uri=uri, image=image, ref_uri=ref, ref_image=ref_image)


def check_references(spec: InputSpec, full_reference: bool, variant: str, has_ref_column: bool):
    """An FR model needs references (``--ref`` or a manifest column); an NR model takes none."""
    if full_reference and spec.ref is None and not has_ref_column:
        raise UsageError(f"{variant} is full-reference: give --ref or a {spec.ref_column!r} column")
    if not full_reference and spec.ref is not None:
        raise UsageError(f"{variant} is no-reference: --ref does not apply")


def read_table(source: str) -> pd.DataFrame:
    """A Parquet (file) or CSV manifest, local or on S3, as pandas."""
    import pandas as pd

    if not is_s3(source) and not os.path.exists(local_path(source)):
        raise UsageError(f"{source} does not exist")
    if os.path.isdir(local_path(source)):
        return pd.read_parquet(local_path(source))  # a Parquet dataset folder
    data = io.BytesIO(read_bytes(source, max_bytes=MAX_MANIFEST_BYTES))
    try:
        if source.lower().rstrip("/").endswith(".csv"):
            return pd.read_csv(data, dtype=str, keep_default_na=False, na_values=[""])
        return pd.read_parquet(data)
    except Exception as exc:  # pyarrow / pandas parse errors
        raise ManifestError(f"cannot read the manifest {source}: {exc}") from exc


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _bytes(value: object) -> bytes | None:
    return value if isinstance(value, bytes) else None


def image_rows(spec: InputSpec, full_reference: bool, variant: str) -> list[ImageRow]:
    """Every image ``spec`` stands for, with its reference when the model is FR."""
    if spec.is_manifest:
        table = read_table(spec.source)
        cols = manifest_columns(list(table.columns), spec)
        has_refs = cols.ref_uri is not None or cols.ref_image is not None
        check_references(spec, full_reference, variant, has_refs)
        uris = [_text(v) for v in table[cols.uri]] if cols.uri else [None] * len(table)
        ids = [str(v) for v in table[cols.id]] if cols.id else list(uris)
        images = list(table[cols.image]) if cols.image else [None] * len(table)
        refs = [_text(v) for v in table[cols.ref_uri]] if cols.ref_uri else [None] * len(table)
        ref_images = list(table[cols.ref_image]) if cols.ref_image else [None] * len(table)
        rows = [
            ImageRow(id=i, uri=u, image=_bytes(b), ref_uri=r, ref_image=_bytes(rb))
            for i, u, b, r, rb in zip(ids, uris, images, refs, ref_images, strict=True)
        ]
    else:
        check_references(spec, full_reference, variant, False)
        rows = [ImageRow(id=u, uri=u) for u in list_images(spec.source, recursive=spec.recursive)]
    if full_reference and spec.ref is not None:
        references = reference_uris(spec)
        keys = [r.uri or "" for r in rows]
        for row, (_, ref) in zip(rows, pair_images(keys, references, spec.pair_regex), strict=True):
            row.ref_uri = ref
    return rows


def reference_uris(spec: InputSpec) -> list[str]:
    """The references ``--ref`` stands for (a manifest's uri column, or a listing); none at all
    is a usage error (otherwise every image would quietly be ``unpaired``)."""
    assert spec.ref is not None
    if is_manifest(spec.ref):
        table = read_table(spec.ref)
        if spec.uri_column not in table.columns:
            raise UsageError(f"the reference manifest has no {spec.uri_column!r} column")
        found = [u for u in (_text(v) for v in table[spec.uri_column]) if u]
    else:
        found = list_images(spec.ref, recursive=spec.recursive)
    if not found:
        raise UsageError(f"no references found in --ref {spec.ref}")
    return found
