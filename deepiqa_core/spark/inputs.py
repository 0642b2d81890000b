"""From an ``InputSpec`` to a DataFrame of images to score: the Spark side of
``deepiqa_core.inputs`` (same listing, same manifest column rule, same pairing)."""

from __future__ import annotations

import os

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..errors import ManifestError
from ..exits import UsageError
from ..inputs import check_references, manifest_columns
from ..inputs import read_table as read_pandas_table
from ..listing import list_images
from ..options import InputSpec, is_manifest
from ..sources import is_s3
from .pairing import attach_references


def read_table(spark: SparkSession, source: str) -> DataFrame:
    """A Parquet or CSV manifest: through Spark's readers, or for ``s3://`` (no Hadoop S3
    connector is assumed) read with boto3 on the driver, as the CLI reads it.

    A local manifest that does not exist is a usage error; one that cannot be read is a
    ``ManifestError`` (exit code 3)."""
    if is_s3(source):
        return spark.createDataFrame(read_pandas_table(source))
    if "://" not in source and not os.path.exists(source):
        raise UsageError(f"{source} does not exist")
    try:
        if source.lower().rstrip("/").endswith(".csv"):
            table = spark.read.option("header", True).csv(source)
        else:
            table = spark.read.parquet(source)
        table.schema  # noqa: B018 - reads the footers now, not in the middle of a run
    except Exception as exc:  # Spark's analysis/IO errors: say which file, not a JVM trace
        raise ManifestError(f"cannot read the manifest {source}: {_first_line(exc)}") from exc
    return table


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def listed(spark: SparkSession, source: str, recursive: bool, column: str) -> DataFrame:
    uris = list_images(source, recursive=recursive)
    return spark.createDataFrame([(u,) for u in uris], f"{column} string")


def read_inputs(spark: SparkSession, spec: InputSpec, full_reference: bool, variant: str):
    """``id, uri[, image][, ref_uri]`` for every image ``spec`` stands for."""
    if spec.is_manifest:
        table = read_table(spark, spec.source)
        cols = manifest_columns(table.columns, spec)
        has_refs = cols.ref_uri is not None or cols.ref_image is not None
        check_references(spec, full_reference, variant, has_refs)
        uri = F.col(f"`{cols.uri}`").cast("string") if cols.uri else F.lit(None).cast("string")
        picked = [uri.alias("uri")]
        row_id = F.col(f"`{cols.id}`").cast("string") if cols.id else uri
        picked.insert(0, row_id.alias("id"))
        if cols.image:
            picked.append(F.col(f"`{cols.image}`").alias("image"))
        if cols.ref_uri and full_reference:
            picked.append(F.col(f"`{cols.ref_uri}`").cast("string").alias("ref_uri"))
        if cols.ref_image and full_reference:
            picked.append(F.col(f"`{cols.ref_image}`").alias("ref_image"))
        items = table.select(*picked)
    else:
        check_references(spec, full_reference, variant, False)
        items = listed(spark, spec.source, spec.recursive, "uri").withColumn("id", F.col("uri"))
        items = items.select("id", "uri")
    if full_reference and spec.ref is not None:
        items = attach_references(items, read_references(spark, spec), spec.pair_regex)
    return items


def read_references(spark: SparkSession, spec: InputSpec) -> DataFrame:
    """``ref_uri`` for every reference ``--ref`` stands for (a manifest's uri column, or a
    listing); none at all is a usage error, as in the CLI."""
    assert spec.ref is not None
    if is_manifest(spec.ref):
        table = read_table(spark, spec.ref)
        if spec.uri_column not in table.columns:
            raise UsageError(f"the reference manifest has no {spec.uri_column!r} column")
        refs = table.select(F.col(f"`{spec.uri_column}`").cast("string").alias("ref_uri"))
        empty = refs.where(F.col("ref_uri").isNotNull()).limit(1).count() == 0
    else:
        refs = listed(spark, spec.ref, spec.recursive, "ref_uri")
        empty = refs.isEmpty()
    if empty:
        raise UsageError(f"no references found in --ref {spec.ref}")
    return refs
