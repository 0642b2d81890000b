"""spark-submit jobs/score.py: batch image-quality scoring with DeepIQA on Spark.

Runs the same scoring as the deepiqa CLI, spread over Spark executors: images are listed on the
driver (folder, glob, s3:// prefix) or read from a Parquet/CSV manifest, FR images are joined to
their references, and a pandas UDF (mapInPandas) fetches, decodes and scores them on each
executor with the model broadcast once and loaded once per Python worker.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # jobs/common.py, on the driver only

from common import job_main, publish_atomically  # noqa: E402
from pyspark.accumulators import AccumulatorParam  # noqa: E402

from deepiqa_core.batch import BatchConfig, output_columns  # noqa: E402
from deepiqa_core.defaults import DEFAULT_WEIGHTS, SAMPLES  # noqa: E402
from deepiqa_core.errors import DeepIQAError  # noqa: E402
from deepiqa_core.imaging import DEFAULT_MAX_PIXELS  # noqa: E402
from deepiqa_core.scoring import DEFAULT_PATCH_BUDGET  # noqa: E402
from deepiqa_core.sources import is_s3, list_local, list_s3  # noqa: E402
from deepiqa_core.weights import read_meta, weights_sha256  # noqa: E402

EXIT_OK, EXIT_ERROR_RATE, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3
DEFAULT_PAIR_REGEX = r"^(.+?)(?:__.*)?$"
MANIFEST_SUFFIXES = (".parquet", ".csv")
DEFAULT_OUTPUT = Path("output/score-default")

EPILOG = f"""\
inputs (INPUT and --ref):
  a folder (searched recursively) or a glob of image files   photos/  'photos/*.jpg'
  an S3 prefix (read with boto3; endpoint/credentials from    s3://bucket/photos/
  the usual AWS_* settings)
  a Parquet or CSV manifest with a 'uri' column (local paths  manifest.parquet
  and s3:// URIs may be mixed), optional 'id', 'ref_uri';
  or a Parquet table of image bytes ('--bytes-column image')

full reference:
  --ref with a folder/prefix pairs each image with the reference whose file stem equals the
  key taken from the image's stem by --pair-regex (default '{DEFAULT_PAIR_REGEX}':
  'cat__jpeg_q10.jpg' pairs with 'cat.png'). A manifest may instead carry 'ref_uri'.

output (--output DIR, written to a staging folder and renamed into place when complete):
  DIR/scores/       Parquet, exactly one row per input: id, uri, ref_uri, score, num_patches,
                    model, model_sha256, error_code, error_message (null when fine)
  DIR/scores_csv/   with --csv
  DIR/patches/      with --patches: id, patch_index, y, x, quality, weight per patch
  DIR/summary.json  count, percentiles, errors by code, images/s, model loads
  DIR/_COMPLETE     written last

error codes: missing, access_denied, read_error, decode_error, unsupported_image, too_small,
  too_large, unpaired, size_mismatch, internal

exit codes: {EXIT_OK} done; {EXIT_ERROR_RATE} error rate above --max-error-rate; {EXIT_USAGE} usage;
  {EXIT_FATAL} nothing to score or unusable weights

examples:
  spark-submit jobs/score.py                                   # bundled samples, shipped weights
  spark-submit jobs/score.py s3://media/2026/ --output out/nightly --csv --max-error-rate 0.01
  spark-submit jobs/score.py distorted/ --ref references/ --weights fr.safetensors --output out/fr
  spark-submit --master 'local[4]' jobs/score.py manifest.parquet --weights nr.safetensors \\
      --output out/m --patches
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/score.py",
        description="Score images with DeepIQA on Spark. With no INPUT, scores the bundled "
        "sample images (NR and FR) with the shipped default weights.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="?", help="folder, glob, s3:// prefix or manifest (see below)")
    p.add_argument("--weights", help="deepiqa .safetensors (default: the shipped NR/FR weights)")
    p.add_argument("--ref", help="references for FR: folder, glob, s3:// prefix or manifest")
    p.add_argument("--output", type=Path, help=f"output folder (default {DEFAULT_OUTPUT}/...)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--csv", action="store_true", help="also write the scores as CSV")
    p.add_argument("--patches", action="store_true", help="also write the per-patch table")
    g = p.add_argument_group("manifest columns")
    g.add_argument("--uri-column", default="uri")
    g.add_argument("--id-column", default="id", help="(default: the uri when absent)")
    g.add_argument("--ref-column", default="ref_uri")
    g.add_argument("--bytes-column", help="column of image bytes, read instead of uris")
    g.add_argument(
        "--pair-regex",
        default=DEFAULT_PAIR_REGEX,
        help="regex whose group 1 turns an image's file stem into its reference's",
    )
    g = p.add_argument_group("scoring")
    g.add_argument(
        "--resize-reference",
        action="store_true",
        help="resize a reference to its distorted image's size instead of size_mismatch",
    )
    g.add_argument(
        "--tile-rows",
        type=int,
        help="split each image into tiles of this many patch rows, scored by separate tasks "
        "and pooled in Spark (for huge images; ids must be unique)",
    )
    g.add_argument("--stride", type=int, default=32, help="patch grid step (default 32)")
    g.add_argument(
        "--patch-budget",
        type=int,
        default=DEFAULT_PATCH_BUDGET,
        help="most patches per forward pass on a worker",
    )
    g.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    g.add_argument(
        "--device",
        default="auto",
        help="auto: the GPU Spark assigned to the task, else cuda:0, else cpu",
    )
    g.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16 autocast on GPUs: ~5x faster there, scores move by ~1%%",
    )
    g = p.add_argument_group("execution")
    g.add_argument(
        "--partitions",
        type=int,
        help="default: max(default parallelism, rows / --rows-per-partition)",
    )
    g.add_argument("--rows-per-partition", type=int, default=256)
    g.add_argument(
        "--arrow-batch-rows",
        type=int,
        default=64,
        help="rows per Arrow batch sent to Python (image bytes are large)",
    )
    g.add_argument(
        "--decode-workers",
        type=int,
        default=4,
        help="threads per task that fetch and decode images",
    )
    g.add_argument(
        "--torch-threads",
        type=int,
        help="CPU threads per task for the network (default: spark.task.cpus)",
    )
    g.add_argument(
        "--max-error-rate",
        type=float,
        help="exit 1 when the share of rows with an error exceeds this (0..1)",
    )
    g.add_argument(
        "--fail-once-marker",
        help="testing aid: the first attempt of partition 0 "
        "fails after its first batch unless this file exists (it creates it)",
    )
    return p


class UsageError(Exception):
    pass


# --- inputs -----------------------------------------------------------------------------------


def _is_manifest(source: str) -> bool:
    return source.lower().rstrip("/").endswith(MANIFEST_SUFFIXES)


def _list(source: str) -> list[str]:
    return list(list_s3(source)) if is_s3(source) else list_local(source)


def _read_manifest(spark, source: str):
    if source.lower().endswith(".csv"):
        return spark.read.option("header", True).csv(source)
    return spark.read.parquet(source)


def read_items(spark, args):
    """id, uri[, image][, ref_uri][, ref_image] for every image to score."""
    from pyspark.sql import functions as F

    if _is_manifest(args.input):
        df = _read_manifest(spark, args.input)
        renames = {args.uri_column: "uri", args.id_column: "id", args.ref_column: "ref_uri"}
        if args.bytes_column:
            renames[args.bytes_column] = "image"
        for old, new in renames.items():
            if old in df.columns and old != new:
                df = df.withColumnRenamed(old, new)
        if "uri" not in df.columns and "image" not in df.columns:
            raise UsageError(f"manifest has no {args.uri_column!r} (or bytes) column")
        if "uri" not in df.columns:
            if "id" not in df.columns:
                raise UsageError(f"a manifest of image bytes needs an {args.id_column!r} column")
            df = df.withColumn("uri", F.lit(None).cast("string"))
        if "id" not in df.columns:
            df = df.withColumn("id", F.col("uri"))
        keep = [c for c in ("id", "uri", "image", "ref_uri", "ref_image") if c in df.columns]
        return df.select(
            *[F.col(c).cast("string") if c in ("id", "uri", "ref_uri") else F.col(c) for c in keep]
        )
    uris = _list(args.input)
    return spark.createDataFrame([(u, u) for u in uris], "id string, uri string")


def attach_references(spark, items, args):
    """Left-join images to references by file-stem key; unmatched rows keep a null ref_uri."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if _is_manifest(args.ref):
        refs = _read_manifest(spark, args.ref).select(F.col(args.uri_column).alias("ref_uri"))
    else:
        refs = spark.createDataFrame([(u,) for u in _list(args.ref)], "ref_uri string")
    stem = r"([^/]+?)(\.[^./]*)?$"
    refs = refs.withColumn("key", F.regexp_extract("ref_uri", stem, 1))
    first = Window.partitionBy("key").orderBy("ref_uri")  # duplicate stems: the first uri wins
    refs = refs.withColumn("n", F.row_number().over(first)).where("n = 1").drop("n")
    items = items.drop("ref_uri").withColumn(
        "key", F.regexp_extract(F.regexp_extract("uri", stem, 1), args.pair_regex, 1)
    )
    return items.join(refs, on="key", how="left").drop("key")


# --- the executor side ------------------------------------------------------------------------


class MaxParam(AccumulatorParam):
    """Accumulator that keeps the largest value added (peak worker memory)."""

    def zero(self, value: int) -> int:
        return 0

    def addInPlace(self, value1: int, value2: int) -> int:  # noqa: N802 (PySpark's name)
        return max(value1, value2)


def make_worker(broadcast, sha: str, config: BatchConfig, args, loads, peak_rss):
    """The mapInPandas function. Defined here, so spark-submit pickles it by value."""
    requested_device, precision = args.device, args.precision
    torch_threads, marker = args.torch_threads, args.fail_once_marker

    def worker(frames):
        import os
        import resource

        import torch
        from pyspark import TaskContext

        from deepiqa_core.batch import cached_batch_scorer

        ctx = TaskContext.get()
        device = requested_device
        if device == "auto":
            gpus = ctx.resources().get("gpu") if ctx else None
            if gpus is not None and gpus.addresses:
                device = f"cuda:{gpus.addresses[0]}"
            else:
                device = "cuda:0" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            torch.set_num_threads(torch_threads or (ctx.cpus() if ctx else 1))
        autocast = torch.bfloat16 if precision == "bf16" and device != "cpu" else None
        scorer = cached_batch_scorer(
            sha,
            lambda: broadcast.value,
            device,
            config,
            autocast_dtype=autocast,
            on_load=lambda: loads.add(1),
        )
        inject = (
            marker is not None
            and ctx is not None
            and ctx.partitionId() == 0
            and ctx.attemptNumber() == 0
            and not os.path.exists(marker)
        )
        for frame in frames:
            yield scorer.score_frame(frame)
            if inject:
                open(marker, "w").close()
                raise RuntimeError("injected failure (--fail-once-marker)")
        peak_rss.add(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)  # KiB -> MiB

    return worker


# --- one scoring run --------------------------------------------------------------------------


def run_scoring(spark, args, weights: Path, output: Path) -> dict:
    from pyspark import StorageLevel

    data = weights.read_bytes()
    meta = read_meta(data)
    sha = weights_sha256(data)
    full_reference = meta.variant.endswith("-fr")
    items = read_items(spark, args)
    if full_reference:
        if args.ref:
            items = attach_references(spark, items, args)
        elif "ref_uri" not in items.columns:
            raise UsageError(f"{meta.variant} is full-reference: give --ref or a ref_uri column")
    elif args.ref:
        raise UsageError(f"{meta.variant} is no-reference: --ref does not apply")
    rows = items.count()
    if rows == 0:
        raise DeepIQAError(f"no images found in {args.input}")
    partitions = args.partitions or max(
        spark.sparkContext.defaultParallelism, math.ceil(rows / args.rows_per_partition)
    )
    config = BatchConfig(
        stride=args.stride,
        patch_budget=args.patch_budget,
        max_pixels=args.max_pixels,
        resize_reference=args.resize_reference,
        decode_workers=args.decode_workers,
        with_patches=args.patches or bool(args.tile_rows),
    )
    # Tiles of one image go to different tasks; FR rows sharing a reference (and tile) go to
    # the same task, sorted, so each worker featurises that reference once.
    tile = []
    if args.tile_rows:
        items = split_into_tiles(items, rows, args.tile_rows, config, partitions)
        tile = ["tile_row_start"]
    if full_reference:
        items = items.repartition(partitions, "ref_uri", *tile).sortWithinPartitions(
            "ref_uri", *tile, "id"
        )
    else:
        items = items.repartition(partitions, "id", *tile)

    schema = ", ".join(f"{name} {kind}" for name, kind in output_columns(config))
    loads = spark.sparkContext.accumulator(0)
    peak_rss = spark.sparkContext.accumulator(0, MaxParam())
    broadcast = spark.sparkContext.broadcast(data)
    worker = make_worker(broadcast, sha, config, args, loads, peak_rss)

    started = time.perf_counter()
    with publish_atomically(output, args.overwrite) as staging:
        scored = items.mapInPandas(worker, schema)
        if config.with_patches:  # two outputs from one scoring pass
            scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
        patches = explode_patches(scored) if config.with_patches else None
        base = [name for name, _ in output_columns(BatchConfig())]
        scores = combine_tiles(scored, patches, base) if args.tile_rows else scored.select(*base)
        scores.write.parquet(str(staging / "scores"))
        if args.patches:
            patches.write.parquet(str(staging / "patches"))
        if config.with_patches:
            scored.unpersist()
        elapsed = time.perf_counter() - started
        result = spark.read.parquet(str(staging / "scores"))
        if args.csv:
            result.write.option("header", True).csv(str(staging / "scores_csv"))
        summary = summarise(result, rows, elapsed, meta.variant, sha, loads.value, partitions)
        summary["worker_peak_rss_mib"] = peak_rss.value
        summary["output"] = str(output.absolute())
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def split_into_tiles(items, rows: int, tile_rows: int, config: BatchConfig, partitions: int):
    """One row per tile of ``tile_rows`` grid rows; grid sizes come from image headers.

    Unreadable images keep a single untiled row, whose scoring then reports the error.
    """
    from pyspark.sql import functions as F

    if items.select("id").distinct().count() != rows:
        raise UsageError("--tile-rows pools tiles by id, so ids must be unique")
    probe_cols = [c for c in ("id", "uri", "image") if c in items.columns]

    def probe(frames):
        from deepiqa_core.batch import probe_frame

        for frame in frames:
            yield probe_frame(frame, config)

    sizes = (
        items.select(*probe_cols)
        .repartition(partitions, "id")
        .mapInPandas(probe, "id string, grid_rows int")
    )
    tiles = F.greatest(F.lit(1), F.ceil(F.col("grid_rows") / tile_rows).cast("int"))
    start = F.col("tile") * tile_rows
    return (
        items.join(sizes, on="id", how="left")
        .withColumn("tile", F.explode(F.sequence(F.lit(0), F.coalesce(tiles, F.lit(1)) - 1)))
        .withColumn("tile_row_start", F.when(F.col("grid_rows").isNotNull(), start))
        .withColumn("tile_row_stop", F.when(F.col("grid_rows").isNotNull(), start + tile_rows))
        .drop("grid_rows", "tile")
    )


def explode_patches(scored):
    """Per-patch table: id, patch_index (row-major in the image's grid), y, x, quality, weight."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    zipped = F.arrays_zip("patch_y", "patch_x", "patch_quality", "patch_weight")
    patches = scored.select("id", F.explode(zipped).alias("p")).select(
        "id",
        F.col("p.patch_y").alias("y"),
        F.col("p.patch_x").alias("x"),
        F.col("p.patch_quality").alias("quality"),
        F.col("p.patch_weight").alias("weight"),
    )
    order = Window.partitionBy("id").orderBy("y", "x")
    index = (F.row_number().over(order) - 1).alias("patch_index")
    return patches.select("id", index, "y", "x", "quality", "weight")


def combine_tiles(scored, patches, columns: list[str]):
    """One row per image from its tiles' rows: scores pooled over all patches, first error."""
    from pyspark.sql import functions as F

    first = [
        F.first(c, ignorenulls=True).alias(c)
        for c in ("uri", "ref_uri", "model", "model_sha256", "error_code", "error_message")
    ]
    meta = scored.groupBy("id").agg(*first)
    pooled = aggregate_patches(patches)
    failed = F.col("error_code").isNotNull()
    return (
        meta.join(pooled, on="id", how="left")
        .withColumn("score", F.when(~failed, F.col("score")))
        .withColumn("num_patches", F.when(~failed, F.col("num_patches")))
        .select(*columns)
    )


def summarise(
    result, rows: int, elapsed: float, variant: str, sha: str, loads: int, partitions: int
) -> dict:
    from pyspark.sql import functions as F

    errors = {
        r["error_code"]: r["count"]
        for r in result.where("error_code IS NOT NULL").groupBy("error_code").count().collect()
    }
    probs = [0.05, 0.25, 0.5, 0.75, 0.95]
    quantiles = result.where("score IS NOT NULL").approxQuantile("score", probs, 0.0)
    stats = result.agg(F.count("score").alias("n"), F.mean("score").alias("mean")).first()
    return {
        "model": variant,
        "model_sha256": sha,
        "rows_in": rows,
        "rows_out": result.count(),
        "scored": stats["n"],
        "failed": sum(errors.values()),
        "errors_by_code": dict(sorted(errors.items())),
        "score_mean": stats["mean"],
        "score_percentiles": dict(
            zip([f"p{int(q * 100)}" for q in probs], quantiles, strict=False)
        ),
        "seconds": round(elapsed, 2),
        "images_per_second": round(rows / elapsed, 2) if elapsed > 0 else None,
        "partitions": partitions,
        "model_loads": loads,
    }


def aggregate_patches(patches):
    """Image scores from a per-patch table (id, quality, weight): sum(w*q) / sum(w) per id.

    Equals the workers' own pooling (tested), so patch tables of an image's tiles scored by
    different tasks can be combined here.
    """
    from pyspark.sql import functions as F

    w, q = F.col("weight").cast("double"), F.col("quality").cast("double")
    return patches.groupBy("id").agg(
        (F.sum(w * q) / F.sum(w)).alias("score"), F.count("*").cast("int").alias("num_patches")
    )


def print_summary(summary: dict) -> None:
    pct = summary["score_percentiles"]
    print(
        f"deepiqa score: {summary['rows_in']} images with {summary['model']} "
        f"({summary['model_sha256'][:12]}) in {summary['seconds']} s, "
        f"{summary['images_per_second']} images/s"
    )
    errors = ", ".join(f"{k} {v}" for k, v in summary["errors_by_code"].items()) or "none"
    print(f"  scored {summary['scored']}, failed {summary['failed']} ({errors})")
    if pct:
        print("  score p5/p25/p50/p75/p95: " + " / ".join(f"{v:.2f}" for v in pct.values()))
    print(
        f"  model loads: {summary['model_loads']} across {summary['partitions']} partitions; "
        f"peak Python worker memory {summary['worker_peak_rss_mib']} MiB"
    )
    print(f"  output: {summary['output']}")


def default_runs(args) -> list[tuple[argparse.Namespace, Path, Path]]:
    """No INPUT: NR over the sample photos, FR over the sample pairs, shipped weights."""
    out = args.output or DEFAULT_OUTPUT
    nr = argparse.Namespace(**{**vars(args), "input": str(SAMPLES / "nr"), "ref": None})
    fr = argparse.Namespace(
        **{
            **vars(args),
            "input": str(SAMPLES / "fr" / "distorted"),
            "ref": str(SAMPLES / "fr" / "reference"),
        }
    )
    return [(nr, DEFAULT_WEIGHTS["nr"], out / "nr"), (fr, DEFAULT_WEIGHTS["fr"], out / "fr")]


def prepare_runs(args) -> list[tuple[argparse.Namespace, Path, Path]]:
    if args.input is None:
        if args.weights or args.ref:
            raise UsageError("--weights/--ref need an INPUT")
        if args.output is None:
            args.overwrite = True  # the default output folder is refreshed on every default run
        runs = default_runs(args)
        for run_args, _, _ in runs:
            run_args.overwrite = args.overwrite
        return runs
    if not args.weights:
        raise UsageError("--weights is required with an INPUT")
    if args.output is None:
        raise UsageError("--output is required with an INPUT")
    return [(args, Path(args.weights), args.output)]


def session_conf(args) -> dict[str, str]:
    return {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(args.arrow_batch_rows),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.log.level": "WARN",
    }


def run(spark, argv: list[str] | None = None) -> int:
    """Parse ``argv`` and score on an existing session (tests share one); returns the exit code."""
    args = build_parser().parse_args(argv)
    for key, value in session_conf(args).items():
        if key.startswith("spark.sql."):
            spark.conf.set(key, value)
    worst = EXIT_OK
    try:
        for run_args, weights, output in prepare_runs(args):
            summary = run_scoring(spark, run_args, weights, output)
            print_summary(summary)
            rate = summary["failed"] / max(1, summary["rows_in"])
            if args.max_error_rate is not None and rate > args.max_error_rate:
                print(f"  error rate {rate:.3f} exceeds --max-error-rate {args.max_error_rate}")
                worst = EXIT_ERROR_RATE
    except UsageError as exc:
        print(f"score.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DeepIQAError, FileExistsError, FileNotFoundError) as exc:
        print(f"score.py: {exc}", file=sys.stderr)
        return EXIT_FATAL
    return worst


def main(argv: list[str] | None = None) -> int:
    return job_main("deepiqa-score", build_parser(), run, session_conf, argv)


if __name__ == "__main__":
    sys.exit(main())
