"""Per-patch tables: from the scoring UDF's patch arrays to rows, and back to image scores."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def explode_patches(scored: DataFrame, id_col: str = "id") -> DataFrame:
    """One row per patch: ``id, patch_index`` (row-major in the image's grid), ``y, x,
    quality, weight``, from rows scored ``with_patches``."""
    zipped = F.arrays_zip("patch_y", "patch_x", "patch_quality", "patch_weight")
    patches = scored.select(F.col(id_col).alias("id"), F.explode(zipped).alias("p")).select(
        "id",
        F.col("p.patch_y").alias("y"),
        F.col("p.patch_x").alias("x"),
        F.col("p.patch_quality").alias("quality"),
        F.col("p.patch_weight").alias("weight"),
    )
    order = Window.partitionBy("id").orderBy("y", "x")
    index = (F.row_number().over(order) - 1).alias("patch_index")
    return patches.select("id", index, "y", "x", "quality", "weight")


def aggregate_patches(patches: DataFrame) -> DataFrame:
    """Image scores from a per-patch table (``id, quality, weight``): ``sum(w*q) / sum(w)``.

    Equals the workers' own pooling (tested), so the patches of one image scored in pieces by
    different tasks (``--tile-rows``), or filtered by the user, pool here into image scores.

    Returns
    -------
    DataFrame
        ``id``, ``score`` (double), ``num_patches`` (int).
    """
    w, q = F.col("weight").cast("double"), F.col("quality").cast("double")
    return patches.groupBy("id").agg(
        (F.sum(w * q) / F.sum(w)).alias("score"), F.count("*").cast("int").alias("num_patches")
    )
