"""From an ``InputSpec`` to a DataFrame of images to score: the Spark side of
``deepiqa_core.inputs`` (same listing, same manifest column rule, same pairing)."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from functools import partial

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..batch import OUTPUT_COLUMNS
from ..errors import ManifestError, UsageError
from ..inputs import check_references, manifest_columns, passed_columns
from ..inputs import read_table as read_pandas_table
from ..listing import ListingError, absolute, iter_images, iter_versioned
from ..listing_parts import Plan, list_part, plan_listing
from ..options import InputSpec, is_manifest
from ..sources import is_s3
from .pairing import attach_references
from .storage import hadoop_glob_escape


def read_table(spark: SparkSession, source: str) -> DataFrame:
    """A Parquet or CSV manifest: through Spark's readers, or for ``s3://`` (no Hadoop S3
    connector is assumed) read with boto3 on the driver, as the CLI reads it.

    A local manifest that does not exist is a usage error; one that cannot be read is a
    ``ManifestError`` (exit code 3)."""
    if is_s3(source):
        return spark.createDataFrame(read_pandas_table(source))
    if "://" not in source and not source.startswith("file:") and not os.path.exists(source):
        raise UsageError(f"{source} does not exist")
    try:
        path = hadoop_glob_escape(source)  # a manifest named m[1].parquet is that file
        if source.lower().rstrip("/").endswith(".csv"):
            table = spark.read.option("header", True).csv(path)
        else:
            table = spark.read.parquet(path)
        table.schema  # noqa: B018 - reads the footers now, not in the middle of a run
    except Exception as exc:  # Spark's analysis/IO errors: say which file, not a JVM trace
        raise ManifestError(f"cannot read the manifest {source}: {first_line(exc)}") from exc
    return table


def first_line(exc: BaseException) -> str:
    """What went wrong, in one line: the deepest Java cause's message when the error comes
    through py4j ("An error occurred while calling o1050.parquet" says nothing), else the
    error's first line."""
    lines = [line.strip() for line in str(exc).strip().splitlines()]
    causes = [line.removeprefix("Caused by: ") for line in lines if line.startswith("Caused by:")]
    thrown = [line for line in lines if re.match(r"^[a-z][\w.$]*(Exception|Error)\b", line)]
    best = (causes or thrown or lines or [type(exc).__name__])[-1 if causes else 0]
    return best[:300]


# output columns a passed-through manifest column must not shadow (Spark's own working columns too)
SCORE_NAMES = (*(name for name, _ in OUTPUT_COLUMNS), "_chunk", "tile_row_start", "tile_row_stop")
LISTING_BATCH = 100_000


def listed(
    spark: SparkSession,
    source: str,
    recursive: bool,
    column: str,
    stage: str | None = None,
    batch_size: int = LISTING_BATCH,
    version: str | None = None,
) -> DataFrame:
    """The listing rule's URIs as a one-column DataFrame (with ``version``: a second column of
    that name holding each image's version key, ``listing.iter_versioned``). With ``stage`` (a
    Spark-writable folder), a source ``listing_parts`` splits (an ``s3://`` prefix longer than
    a page, a folder with subfolders) is listed by executors, part by part, into ``stage``;
    otherwise a listing longer than ``batch_size`` paths is streamed there in batches, so the
    driver's memory does not grow with it; a shorter one (or any, without ``stage``) is held on
    the driver. Relative local paths become absolute: executors do not run in the driver's
    folder."""
    schema = f"{column} string" + (f", {version} string" if version else "")
    if stage is not None:
        plan = plan_listing(
            source,
            recursive,
            versions=version is not None,
            parts=4 * spark.sparkContext.defaultParallelism,
        )
        if plan is not None:
            return _listed_by_executors(spark, source, plan, schema, stage, version is not None)
    stream: Iterator[tuple[str, ...]]
    if version:
        stream = ((absolute(u), v) for u, v in iter_versioned(source, recursive=recursive))
    else:
        stream = ((absolute(u),) for u in iter_images(source, recursive=recursive))
    if stage is None:
        return spark.createDataFrame(sorted(stream), schema)
    first = list(itertools.islice(stream, batch_size))
    if len(first) < batch_size:
        return spark.createDataFrame(first, schema)
    batch: list[tuple] = first
    written = False

    def flush() -> None:
        nonlocal written
        frame = spark.createDataFrame(batch, schema)
        frame.write.mode("append" if written else "overwrite").parquet(stage)
        written = True
        batch.clear()

    for row in stream:
        batch.append(row)
        if len(batch) >= batch_size:
            flush()
    if batch or not written:
        flush()
    return spark.read.parquet(stage)


def _listed_by_executors(
    spark: SparkSession, source: str, plan: Plan, schema: str, stage: str, versions: bool
) -> DataFrame:
    """A listing ``listing_parts`` split: one task per part, written to ``stage`` once (a
    listing is never repeated by a later action). A part that cannot be listed fails the run
    as a ``ListingError``, as the driver's listing would."""
    parts = spark.sparkContext.parallelize(plan.parts, len(plan.parts))
    rows = parts.flatMap(partial(list_part, versions=versions))
    if plan.rows:
        rows = rows.union(spark.sparkContext.parallelize(plan.rows, 1))
    try:
        spark.createDataFrame(rows, schema).write.mode("overwrite").parquet(stage)
    except Exception as exc:  # a task's ListingError arrives wrapped by py4j
        raise ListingError(f"cannot list {source}: {first_line(exc)}") from exc
    return spark.read.parquet(stage)


def read_inputs(
    spark: SparkSession,
    spec: InputSpec,
    full_reference: bool,
    variant: str,
    *,
    pass_columns: tuple[str, ...] | None = (),
    stage: str | None = None,
    listing_batch: int = LISTING_BATCH,
) -> DataFrame:
    """``id, uri[, image][, ref_uri][, ref_image]`` for every image ``spec`` stands for.

    ``pass_columns``: a manifest's other columns to keep (None: all; a name that clashes with
    an output column gets the ``manifest_`` prefix). Without an id column the id is the uri,
    made unique (``#2``, ``#3`` ... for repeats). ``stage``: a folder to stream listings into
    (see ``listed``).
    """
    listing_stage = None if stage is None else f"{stage.rstrip('/')}/_listing"
    if spec.is_manifest:
        items = manifest_items(spark, spec, full_reference, variant, pass_columns)
    else:
        check_references(spec, full_reference, variant, False)
        uris = listed(spark, spec.source, spec.recursive, "uri", listing_stage, listing_batch)
        items = uris.select(F.col("uri").alias("id"), "uri")
    if full_reference and spec.ref is not None:
        ref_stage = None if stage is None else f"{stage.rstrip('/')}/_refs"
        refs = read_references(spark, spec, ref_stage, listing_batch)
        items = attach_references(items, refs, spec.pair_regex)
    return items


def manifest_items(
    spark: SparkSession,
    spec: InputSpec,
    full_reference: bool,
    variant: str,
    pass_columns: tuple[str, ...] | None,
) -> DataFrame:
    """A manifest's rows to score (the column rule of ``inputs.manifest_columns``): the score
    job's inputs, and the audit's library when it is a manifest."""
    table = read_table(spark, spec.source)
    cols = manifest_columns(table.columns, spec)
    has_refs = cols.ref_uri is not None or cols.ref_image is not None
    check_references(spec, full_reference, variant, has_refs)
    uri = F.col(f"`{cols.uri}`").cast("string") if cols.uri else F.lit(None).cast("string")
    picked = [uri.alias("uri")]
    if cols.image:
        picked.append(F.col(f"`{cols.image}`").alias("image"))
    if cols.ref_uri and full_reference:
        picked.append(F.col(f"`{cols.ref_uri}`").cast("string").alias("ref_uri"))
    if cols.ref_image and full_reference:
        picked.append(F.col(f"`{cols.ref_image}`").alias("ref_image"))
    kept = passed_columns(table.columns, cols, pass_columns, SCORE_NAMES)
    passed = [F.col(f"`{c}`").alias(name) for c, name in kept]
    if cols.id:
        return table.select(F.col(f"`{cols.id}`").cast("string").alias("id"), *picked, *passed)
    return _unique_ids(table.select(*picked, *passed))


def _unique_ids(items: DataFrame) -> DataFrame:
    """The id rule without an id column: the uri; a uri that occurs again gets ``#2``, ``#3``
    ... in manifest order, so ids never collide (and partitions by id never skew)."""
    numbered = items.withColumn("_order", F.monotonically_increasing_id()).withColumn(
        "_n", F.row_number().over(Window.partitionBy("uri").orderBy("_order"))
    )
    ident = F.when(F.col("_n") == 1, F.col("uri")).otherwise(
        F.concat(F.col("uri"), F.lit("#"), F.col("_n").cast("string"))
    )
    return numbered.select(ident.alias("id"), "*").drop("_order", "_n")


def read_references(
    spark: SparkSession,
    spec: InputSpec,
    stage: str | None = None,
    listing_batch: int = LISTING_BATCH,
) -> DataFrame:
    """``ref_uri`` for every reference ``--ref`` stands for (a manifest's uri column, or a
    listing); none at all is a usage error, as in the CLI."""
    assert spec.ref is not None
    if is_manifest(spec.ref):
        table = read_table(spark, spec.ref)
        if spec.uri_column not in table.columns:
            raise UsageError(f"the reference manifest has no {spec.uri_column!r} column")
        refs = table.select(F.col(f"`{spec.uri_column}`").cast("string").alias("ref_uri"))
        refs = refs.where(F.col("ref_uri").isNotNull())
    else:
        refs = listed(spark, spec.ref, spec.recursive, "ref_uri", stage, listing_batch)
    if refs.isEmpty():
        raise UsageError(f"no references found in --ref {spec.ref}")
    return refs
