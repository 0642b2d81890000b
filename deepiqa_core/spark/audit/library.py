"""The audited library as a DataFrame: every image with its version key, and what to rescore.

Version keys (what tells a changed image from an unchanged one without scoring it):

* folders, globs, S3 prefixes: from the listing itself (``listing.iter_versioned``: local
  ``size-mtime_ns``, S3 ``etag-size``); references listed with ``--ref`` add theirs, so a
  replaced reference rescores its images;
* manifests: the column named by ``--version-column``; without one, the content: ``sha256`` of
  a bytes column, or of each URI's bytes, read on the executors (every image is read on every
  run: name a version column for large libraries).

``classify`` compares the library with the previous snapshot, keyed by (id, version key, model
sha256): ``new``, ``changed`` (another version), ``model`` (scored by other weights), ``retry``
(the last result was a transient failure, ``RETRY_CODES``), ``full`` (``--full``), or
``unchanged`` (the previous row is carried forward); images in the snapshot but no longer in the
library are ``removed`` (``job``).
"""

from __future__ import annotations

import hashlib

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType

from ...errors import DeepIQAError, UsageError
from ...options import InputSpec
from ...sources import read_bytes
from ..inputs import LISTING_BATCH, listed, manifest_items
from ..pairing import attach_references

# failures that may pass on a later run with the same bytes: retried every run
_RETRYABLE = ("read_error", "read_timeout", "access_denied", "internal")
RETRY_CODES = (*_RETRYABLE, *(f"ref_{c}" for c in _RETRYABLE))
UNREADABLE = "unreadable"


@pandas_udf(StringType())  # type: ignore[call-overload]  # pyspark's stubs: no type-hinted form
def content_version(uris: pd.Series) -> pd.Series:
    """sha256 of each URI's bytes; ``unreadable:<code>`` when they cannot be read (the row is
    then scored and fails with that code)."""

    def one(uri: object) -> str:
        try:
            return hashlib.sha256(read_bytes(str(uri))).hexdigest()
        except DeepIQAError as exc:
            return f"{UNREADABLE}:{exc.code}"
        except Exception:  # noqa: BLE001 - scoring will report what it is
            return UNREADABLE

    return uris.map(one)


def library_frame(
    spark: SparkSession,
    spec: InputSpec,
    full_reference: bool,
    variant: str,
    version_column: str | None,
    stage: str,
    listing_batch: int = LISTING_BATCH,
) -> DataFrame:
    """``id, uri[, image][, ref_uri][, ref_image], version`` and the manifest's own columns."""
    if spec.is_manifest:
        items = manifest_items(spark, spec, full_reference, variant, None)
        if version_column:
            name = version_column
            if name not in items.columns:
                raise UsageError(f"--version-column: the manifest has no column {name!r}")
            version = F.col(f"`{name}`").cast("string")
        elif "image" in items.columns:
            version = F.sha2(F.col("image"), 256)
        else:
            version = content_version(F.col("uri"))
        return items.withColumn("version", F.coalesce(version, F.lit("null")))
    if version_column:
        raise UsageError("--version-column is for manifests; listed images have their own")
    if full_reference and spec.ref is None:
        raise UsageError("a full-reference model needs --ref (or a manifest with ref_uri)")
    items = listed(
        spark, spec.source, spec.recursive, "uri", f"{stage}/_listing", listing_batch, "version"
    )
    items = items.select(F.col("uri").alias("id"), "uri", "version")  # listed uris are unique
    if not full_reference:
        return items
    if spec.ref is None or spec.ref.lower().endswith((".parquet", ".csv")):
        raise UsageError("the audit pairs references by --ref FOLDER or prefix")
    refs = listed(
        spark, spec.ref, spec.recursive, "ref_uri", f"{stage}/_refs", listing_batch, "ref_v"
    )
    paired = attach_references(items, refs.select("ref_uri"), spec.pair_regex)
    paired = paired.join(refs, on="ref_uri", how="left")
    version = F.concat_ws("|", "version", F.coalesce("ref_v", F.lit("unpaired")))
    return paired.withColumn("version", version).drop("ref_v")


def classify(
    library: DataFrame, previous: DataFrame | None, model_sha256: str, full: bool
) -> DataFrame:
    """The library's rows with their ``reason`` (the job finds the removed ones from its
    materialised plan, so the listing is not run twice)."""
    if previous is None:
        return library.withColumn("reason", F.lit("new"))
    active = previous.where(~F.col("removed"))
    prev = active.select(
        F.col("id").alias("_pid"),
        F.col("version").alias("_pversion"),
        F.col("model_sha256").alias("_psha"),
        F.col("error_code").alias("_perror"),
    )
    joined = library.join(prev, library["id"] == prev["_pid"], "left")
    reason = (
        F.when(F.col("_pid").isNull(), "new")
        .when(F.col("_pversion") != F.col("version"), "changed")
        .when(F.col("_psha") != F.lit(model_sha256), "model")
        .when(F.col("_perror").isin(*RETRY_CODES), "retry")
        .when(F.lit(full), "full")
        .otherwise("unchanged")
    )
    return joined.withColumn("reason", reason).drop("_pid", "_pversion", "_psha", "_perror")
