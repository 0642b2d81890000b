"""The batch scoring job (``spark-submit jobs/score.py``): inputs -> scores, published atomically.

One image's way through it: ``read_inputs`` lists the folder / prefix on the driver (or reads
the manifest with Spark), FR rows are joined to their references (``attach_references``) and
co-located by reference; the rows are repartitioned and ``BroadcastModel.score`` runs the pandas
UDF on the executors (fetch bytes -> decode -> patches -> one forward pass over the patches of
many images -> per-image pooling); the score rows are written to a staging folder beside the
output and renamed into place with ``summary.json`` and ``_COMPLETE``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from ..defaults import DEFAULT_WEIGHTS, SAMPLES
from ..errors import DeepIQAError, ManifestError
from ..exits import ExitCode, UsageError, threshold_code
from ..options import InputSpec, ScoringOptions
from ..outputs import check_separate
from .inputs import read_inputs
from .patches import explode_patches
from .publish import publish_atomically
from .scoring import BroadcastModel
from .summary import format_summary, summarise
from .tiles import TILE_COLUMNS, combine_tiles, split_into_tiles

SCORE_COLUMNS = [
    "id",
    "uri",
    "ref_uri",
    "score",
    "num_patches",
    "in_range",
    "model",
    "model_sha256",
    "error_code",
    "error_message",
]
DEFAULT_OUTPUT = Path("output/score-default")


@dataclass(frozen=True)
class Execution:
    """How the work is spread over Spark."""

    partitions: int | None = None  # default: max(default parallelism, rows / rows_per_partition)
    rows_per_partition: int = 256
    arrow_batch_rows: int = 64  # image bytes are large: far fewer than Spark's 10,000
    torch_threads: int | None = None  # default: spark.task.cpus
    fail_once_marker: str | None = None  # testing aid, see ScoreBatches


@dataclass(frozen=True)
class ScoreJobSpec:
    """One scoring run: what, with which weights, how, and where the results go."""

    inputs: InputSpec
    weights: Path
    output: Path
    overwrite: bool = False
    csv: bool = False
    patches: bool = False
    tile_rows: int | None = None
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    execution: Execution = field(default_factory=Execution)


def default_specs(
    output: Path | None, overwrite: bool, scoring: ScoringOptions, execution: Execution
) -> list[ScoreJobSpec]:
    """No INPUT: NR over the sample photos, FR over the sample pairs, the shipped weights.

    The default output folder is refreshed on every default run (it only ever holds this).
    """
    out = output or DEFAULT_OUTPUT
    replace_it = overwrite or output is None
    common = {"scoring": scoring, "execution": execution, "overwrite": replace_it}
    return [
        ScoreJobSpec(InputSpec(str(SAMPLES / "nr")), DEFAULT_WEIGHTS["nr"], out / "nr", **common),
        ScoreJobSpec(
            InputSpec(str(SAMPLES / "fr" / "distorted"), ref=str(SAMPLES / "fr" / "reference")),
            DEFAULT_WEIGHTS["fr"],
            out / "fr",
            **common,
        ),
    ]


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
        summary = run_score_job(spark, spec)
        print(format_summary(summary))
        code = threshold_code(summary["failed"], summary["rows_in"], spec.scoring.max_error_rate)
        if code != ExitCode.OK:
            rate = summary["failed"] / summary["rows_in"]
            print(f"  error rate {rate:.3f} exceeds --max-error-rate {spec.scoring.max_error_rate}")
        worst = max(worst, code)
    return worst


def run_score_job(spark: SparkSession, spec: ScoreJobSpec) -> dict:
    """Score, write and publish; returns the summary (also written as summary.json)."""
    check_separate(spec.output, [spec.inputs.source, spec.inputs.ref, spec.weights])
    model = BroadcastModel.create(spark, spec.weights)
    items = read_inputs(spark, spec.inputs, model.full_reference, model.meta.variant)
    rows = count_inputs(items, spec.inputs.source)
    if rows == 0:
        raise DeepIQAError(f"no images found in {spec.inputs.source}")
    ex = spec.execution
    if ex.partitions is not None and ex.partitions < 1 or ex.rows_per_partition < 1:
        raise UsageError("--partitions and --rows-per-partition must be >= 1")
    partitions = ex.partitions or max(
        spark.sparkContext.defaultParallelism, math.ceil(rows / ex.rows_per_partition)
    )
    with_patches = spec.patches or spec.tile_rows is not None
    options = replace(spec.scoring, batch=replace(spec.scoring.batch, with_patches=with_patches))
    items = _distribute(items, rows, spec, options, partitions, model.full_reference)

    started = time.perf_counter()
    with (
        arrow_batches(spark, ex.arrow_batch_rows),
        publish_atomically(spec.output, spec.overwrite) as staging,
    ):
        scored = model.score(
            items,
            bytes_col="image" if "image" in items.columns else None,
            ref_col="ref_uri" if "ref_uri" in items.columns else None,
            ref_bytes_col="ref_image" if "ref_image" in items.columns else None,
            tile_cols=TILE_COLUMNS if spec.tile_rows else None,
            options=options,
            with_patches=with_patches,
            torch_threads=ex.torch_threads,
            fail_once_marker=ex.fail_once_marker,
        )
        if "ref_uri" not in scored.columns:
            from pyspark.sql import functions as F

            scored = scored.withColumn("ref_uri", F.lit(None).cast("string"))
        _write(scored, spec, with_patches, staging)
        elapsed = time.perf_counter() - started
        result = spark.read.parquet(str(staging / "scores"))
        if spec.csv:
            result.write.option("header", True).csv(str(staging / "scores_csv"))
        summary = {
            "model": model.meta.variant,
            "model_sha256": model.sha256,
            **summarise(result, rows),
            "seconds": round(elapsed, 2),
            "images_per_second": round(rows / elapsed, 2) if elapsed > 0 else None,
            "partitions": partitions,
            "model_loads": model.loads.value,
            "worker_peak_rss_mib": model.peak_rss_mib.value,
            "output": str(spec.output.absolute()),
        }
        (staging / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def count_inputs(items: DataFrame, source: str) -> int:
    """The number of rows to score; a manifest that breaks while being read is a
    ``ManifestError`` (exit code 3), not a JVM traceback."""
    try:
        return items.count()
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ManifestError(f"cannot read the inputs {source}: {first}") from exc


def _distribute(
    items: DataFrame,
    rows: int,
    spec: ScoreJobSpec,
    options: ScoringOptions,
    partitions: int,
    full_reference: bool,
) -> DataFrame:
    """Tiles of one image go to different tasks; FR rows sharing a reference (and tile) go to
    the same task, sorted, so each worker featurises that reference once."""
    tile: list[str] = []
    if spec.tile_rows is not None:
        items = split_into_tiles(items, rows, spec.tile_rows, options.batch, partitions)
        tile = ["tile_row_start"]
    if full_reference:
        return items.repartition(partitions, "ref_uri", *tile).sortWithinPartitions(
            "ref_uri", *tile, "id"
        )
    return items.repartition(partitions, "id", *tile)


def _write(scored: DataFrame, spec: ScoreJobSpec, with_patches: bool, staging: Path) -> None:
    """scores/ (and patches/): one scoring pass feeds both when patches are wanted."""
    if with_patches:
        scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        patches = explode_patches(scored) if with_patches else None
        if spec.tile_rows is not None:
            scores = combine_tiles(scored, patches, SCORE_COLUMNS)
        else:
            scores = scored.select(*SCORE_COLUMNS)
        scores.write.parquet(str(staging / "scores"))
        if spec.patches:
            patches.write.parquet(str(staging / "patches"))
    finally:
        if with_patches:
            scored.unpersist()
