"""Huge images spread over tasks: one row per band of patch rows, pooled back in Spark.

``split_into_tiles`` reads every image's grid size from its header (on the executors), and
makes one row per tile of ``tile_rows`` grid rows; each tile is scored by whichever task gets it
(patch positions stay the full image's); ``combine_tiles`` pools the tiles' patches into one row
per image, equal to scoring the image whole (tested to 1e-9).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..batch import BatchConfig
from ..errors import UsageError

TILE_COLUMNS = ("tile_row_start", "tile_row_stop")


class _Probe:
    """mapInPandas body: ``id, grid_rows`` from image headers (defined here: pickled by name)."""

    def __init__(self, config: BatchConfig):
        self.config = config

    def __call__(self, frames):
        from ..batch import probe_frame

        for frame in frames:
            yield probe_frame(frame, self.config)


def split_into_tiles(
    items: DataFrame, rows: int, tile_rows: int, config: BatchConfig, partitions: int
) -> DataFrame:
    """One row per tile (``tile_row_start``/``tile_row_stop``); unreadable images keep one
    untiled row, whose scoring then reports the error."""
    if tile_rows < 1:
        raise UsageError("--tile-rows must be >= 1")
    if items.select("id").distinct().count() != rows:
        raise UsageError("--tile-rows pools tiles by id, so ids must be unique")
    probe_cols = [c for c in ("id", "uri", "image") if c in items.columns]
    sizes = (
        items.select(*probe_cols)
        .repartition(partitions, "id")
        .mapInPandas(_Probe(config), "id string, grid_rows int")
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


def combine_tiles(scored: DataFrame, patches: DataFrame, columns: list[str]) -> DataFrame:
    """One row per image from its tiles' rows: scores pooled over all patches, first error."""
    from .patches import aggregate_patches

    first = [
        F.first(c, ignorenulls=True).alias(c)
        for c in columns
        if c not in ("id", "score", "num_patches")
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
