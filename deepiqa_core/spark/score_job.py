"""The batch scoring job (``spark-submit jobs/score.py``): inputs -> scores, published atomically
on any file system the cluster writes, resumable, with a driver that stays small at 10M rows.

One image's way through it:

1. ``publish`` opens a private work folder for the run (keyed by the run's fingerprint, so
   ``--resume`` finds an unfinished one).
2. ``stage_items`` writes the rows to score into ``_items/`` once: a folder or prefix is listed as
   a stream, written in batches (driver memory does not grow with the listing); a manifest is
   read by Spark; FR images are joined to their references; ids are made unique; each row gets
   its chunk, ``xxhash64(id) mod chunks``.
3. ``score_chunks`` scores one chunk at a time (rows repartitioned, FR rows co-located by
   reference; the pandas UDF runs on the executors: fetch -> decode -> patches -> network ->
   pooling) and commits it to ``_chunks/chunk-NNNNN`` (``_DONE`` last). A resumed run skips
   committed chunks.
4. ``write_outputs`` turns the chunks into ``scores/`` (files of ``rows_per_file`` rows),
   ``scores_csv/`` and ``patches/``, and ``summary.json`` (approximate percentiles: the driver
   never collects scores); then the run is published (rename, or pointer on object stores,
   with an executor-side export to ``s3://`` when Spark cannot write it).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ..batch import OUTPUT_COLUMNS
from ..errors import DeepIQAError, ManifestError
from ..exits import ExitCode
from ..options import ScoringOptions
from ..outputs import check_separate
from ..runs.publish import Run, fingerprint
from ..runs.score_spec import Execution, ScoreJobSpec
from ..runs.storage import S3Storage, join, local_path_of
from ..runs.summary import RunSummary, versions
from .export import export_dataset
from .inputs import read_inputs
from .patches import explode_patches
from .publish import publish
from .scoring import BroadcastModel
from .session import driver_file
from .summary import format_spark_summary, score_stats
from .tiles import TILE_COLUMNS, combine_tiles, split_into_tiles

SCORE_COLUMNS = [name for name, _ in OUTPUT_COLUMNS]
SCRATCH = ("_items", "_items.json", "_listing", "_refs", "_chunks")
ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"


@contextmanager
def arrow_batches(spark: SparkSession, rows: int) -> Iterator[None]:
    """Arrow batches of ``rows`` rows for the run (image bytes are large), then as before."""
    before = spark.conf.get(ARROW_BATCH, None)
    spark.conf.set(ARROW_BATCH, str(rows))
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(ARROW_BATCH)
        else:
            spark.conf.set(ARROW_BATCH, before)


def run_score_jobs(spark: SparkSession, specs: list[ScoreJobSpec]) -> int:
    """Run each spec, print its summary; the exit code (``deepiqa_core.exits``) of the worst."""
    worst = ExitCode.OK
    for spec in specs:
        summary = run_score_job(spark, replace(spec, weights=driver_file(spec.weights)))
        print(format_spark_summary(summary))
        code, breach = summary.error_rate_verdict(spec.scoring.max_error_rate)
        if breach:
            print(breach)
        worst = max(worst, code)
    return worst


def _identity(spec: ScoreJobSpec, sha: str) -> dict:
    """What makes two runs the same run (for --resume): not how the work is spread."""
    record = asdict(replace(spec, execution=Execution(), overwrite=False, resume=False))
    return {**record, "weights": sha, "chunk_rows": spec.execution.chunk_rows}


def _export(spark: SparkSession, csv: bool, run: Run) -> None:
    """Copy a finished run to its ``s3://`` target (Spark cannot write there itself)."""
    for name in ("scores", "patches"):
        if run.storage.exists(run.path(name)):
            export_dataset(spark, run.path(name), join(run.published, name))
    if csv:
        export_dataset(spark, run.path("scores"), join(run.published, "scores_csv"), "csv")
    S3Storage().write_text(
        join(run.published, "summary.json"), run.storage.read_text(run.path("summary.json")) or ""
    )


def run_score_job(spark: SparkSession, spec: ScoreJobSpec) -> RunSummary:
    """Score, write and publish; returns the summary (also written as summary.json)."""
    started_at, started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter()
    output = str(spec.output)
    ex = spec.execution
    local = local_path_of(output)
    if local is not None:
        check_separate(Path(local), [spec.inputs.source, spec.inputs.ref, spec.weights])
    model = BroadcastModel.create(spark, spec.weights)
    with_patches = spec.patches or spec.tile_rows is not None
    options = replace(spec.scoring, batch=replace(spec.scoring.batch, with_patches=with_patches))
    key = fingerprint(_identity(spec, model.sha256))
    export = partial(_export, spark, spec.csv)
    with (
        arrow_batches(spark, ex.arrow_batch_rows),
        publish(
            spark, output, overwrite=spec.overwrite, resume=spec.resume, key=key, export=export
        ) as run,
    ):
        items, rows, chunks = stage_items(spark, spec, model, run)
        reused, partitions = score_chunks(spark, spec, model, options, run, items, rows, chunks)
        write_outputs(spark, spec, run, rows, chunks)
        result = spark.read.parquet(run.path("scores"))
        elapsed = time.perf_counter() - started
        summary = RunSummary(
            engine="spark",
            model=model.meta.variant,
            model_sha256=model.sha256,
            run_id=run.run_id,
            started_at=started_at,
            finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            stats=score_stats(result, rows),
            seconds=round(elapsed, 2),
            model_loads_by_compute=dict(model.loads.value),
            output=run.published,
            publish=run.mode,
            input={"source": spec.inputs.source, "ref": spec.inputs.ref},
            arguments=json.loads(json.dumps(asdict(spec), default=str)),
            versions=versions(spark=spark.version),
            engine_facts={
                "chunks": chunks,
                "chunks_reused": reused,
                "partitions": partitions,
                "worker_peak_rss_mib": model.peak_rss_mib.value,
            },
        )
        text = json.dumps(summary.to_json(), indent=2) + "\n"
        run.storage.write_text(run.path("summary.json"), text)
        for name in SCRATCH:  # the chunks are in scores/ now; a crash before here resumes
            if run.storage.exists(run.path(name)):
                run.storage.delete(run.path(name))
    return summary


# --- 2. the rows to score ------------------------------------------------------------------


def stage_items(
    spark: SparkSession, spec: ScoreJobSpec, model: BroadcastModel, run: Run
) -> tuple[DataFrame, int, int]:
    """The rows to score with their ``_chunk``, their count and the number of chunks; written
    to ``_items/`` once and read back from there (a resumed run reuses them)."""
    meta_uri = run.path("_items.json")
    meta = run.storage.read_text(meta_uri) if run.resumed else None
    if meta:
        record = json.loads(meta)
        if record["staged"]:
            return spark.read.parquet(run.path("_items")), record["rows"], record["chunks"]
        return _chunked(_inputs(spark, spec, model, run), 1), record["rows"], 1
    items = _inputs(spark, spec, model, run)
    rows = count_inputs(items, spec.inputs.source)
    if rows == 0:
        raise DeepIQAError(f"no images found in {spec.inputs.source}")
    # a table of bytes is read in place, never copied; one chunk has nothing to skip on resume
    chunks = 1 if "image" in items.columns else max(1, math.ceil(rows / spec.execution.chunk_rows))
    staged = chunks > 1
    items = _chunked(items, chunks)
    if staged:
        items.write.mode("overwrite").parquet(run.path("_items"))
        items = spark.read.parquet(run.path("_items"))
    record = {"rows": rows, "chunks": chunks, "staged": staged}
    run.storage.write_text(meta_uri, json.dumps(record) + "\n")
    return items, rows, chunks


def _inputs(spark: SparkSession, spec: ScoreJobSpec, model: BroadcastModel, run: Run):
    return read_inputs(
        spark,
        spec.inputs,
        model.full_reference,
        model.meta.variant,
        pass_columns=spec.pass_columns,
        stage=run.work,
        listing_batch=spec.execution.listing_batch,
    )


def _chunked(items: DataFrame, chunks: int) -> DataFrame:
    return items.withColumn("_chunk", F.pmod(F.xxhash64("id"), F.lit(chunks)).cast("int"))


def count_inputs(items: DataFrame, source: str) -> int:
    """The number of rows to score; a manifest that breaks while being read is a
    ``ManifestError`` (exit code 3), not a JVM traceback."""
    try:
        return items.count()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ManifestError(f"cannot read the inputs {source}: {first}") from exc


# --- 3. scoring, one committed chunk at a time ---------------------------------------------


def chunk_uri(run: Run, k: int) -> str:
    return run.path("_chunks", f"chunk-{k:05d}")


def score_chunks(
    spark: SparkSession,
    spec: ScoreJobSpec,
    model: BroadcastModel,
    options: ScoringOptions,
    run: Run,
    items: DataFrame,
    rows: int,
    chunks: int,
) -> tuple[int, int]:
    """Score and commit every chunk not committed yet: (chunks reused, partitions per chunk)."""
    ex = spec.execution
    reused = 0
    per_chunk = math.ceil(rows / chunks)
    partitions = ex.partitions or max(
        spark.sparkContext.defaultParallelism, math.ceil(per_chunk / ex.rows_per_partition)
    )
    for k in range(chunks):
        done = join(chunk_uri(run, k), "_DONE")
        if run.storage.exists(done):
            reused += 1
            continue
        part = items.where(F.col("_chunk") == k) if chunks > 1 else items
        part = _distribute(part, per_chunk, spec, options, partitions, model.full_reference)
        scored = model.score(
            part,
            bytes_col="image" if "image" in part.columns else None,
            ref_col="ref_uri" if "ref_uri" in part.columns else None,
            ref_bytes_col="ref_image" if "ref_image" in part.columns else None,
            tile_cols=TILE_COLUMNS if spec.tile_rows else None,
            options=options,
            with_patches=options.batch.with_patches,
            torch_threads=ex.torch_threads,
            fail_once_marker=ex.fail_once_marker,
        )
        keep = [c for c in scored.columns if c not in ("image", "ref_image", "_chunk")]
        scored = scored.select(*keep)
        if "ref_uri" not in scored.columns:
            scored = scored.withColumn("ref_uri", F.lit(None).cast("string"))
        scored.write.mode("overwrite").parquet(chunk_uri(run, k))
        run.storage.write_text(done, "")
    return reused, partitions


def _distribute(
    items: DataFrame,
    rows: int,
    spec: ScoreJobSpec,
    options: ScoringOptions,
    partitions: int,
    full_reference: bool,
) -> DataFrame:
    """Tiles of one image go to different tasks; FR rows sharing a reference (and tile) go to
    the same task, sorted, so each worker featurises that reference once; a table of image
    bytes is scored where it lies (never shuffled)."""
    tile: list[str] = []
    if spec.tile_rows is not None:
        items = split_into_tiles(items, rows, spec.tile_rows, options.batch, partitions)
        tile = ["tile_row_start"]
    if full_reference:
        return items.repartition(partitions, "ref_uri", *tile).sortWithinPartitions(
            "ref_uri", *tile, "id"
        )
    if "image" in items.columns and not tile:
        return items
    return items.repartition(partitions, "id", *tile)


# --- 4. outputs ----------------------------------------------------------------------------


def write_outputs(spark: SparkSession, spec: ScoreJobSpec, run: Run, rows: int, chunks: int):
    """scores/ (one row per input, ``rows_per_file`` rows per file), scores_csv/, patches/."""
    scored = spark.read.parquet(*[chunk_uri(run, k) for k in range(chunks)])
    extra = [c for c in scored.columns if c not in SCORE_COLUMNS and not _internal(c)]
    columns = SCORE_COLUMNS + extra
    with_patches = spec.patches or spec.tile_rows is not None
    if with_patches:
        scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        patches = explode_patches(scored) if with_patches else None
        if spec.tile_rows is not None and patches is not None:
            scores = combine_tiles(scored, patches, columns)
        else:
            scores = scored.select(*columns)
        files = max(1, math.ceil(rows / spec.execution.rows_per_file))
        scores.repartition(files).sortWithinPartitions("id").write.parquet(run.path("scores"))
        if spec.patches and patches is not None:
            patches.write.parquet(run.path("patches"))
    finally:
        if with_patches:
            scored.unpersist()
    if spec.csv and not run.exported:  # an export writes its CSV from scores/
        result = spark.read.parquet(run.path("scores"))
        result.write.option("header", True).csv(run.path("scores_csv"))


def _internal(column: str) -> bool:
    return column in TILE_COLUMNS or column.startswith("patch_") or column == "_chunk"
