"""Scoring a DataFrame of images: the public entry point for users' own Spark pipelines.

>>> from deepiqa_core.spark import score_images
>>> scored = score_images(df, "wadiqam-nr.safetensors", uri_col="path")
>>> scored.select("path", "score", "error_code").show()

``score_images`` keeps every column of ``df`` (bytes columns included) and appends ``score``,
``num_patches``, ``in_range``, ``error_code``, ``error_message``, ``model``, ``model_sha256``
(and the per-patch arrays with ``with_patches``). ``BroadcastModel`` is the same thing in two
steps, for callers that want the load count and peak worker memory afterwards (the scoring job
reports them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf

from ..errors import UsageError
from ..local_scorer import read_weights
from ..options import ScoringOptions
from ..weights import WeightsMeta, load_weights, weights_sha256
from .udf import INPUT_COLUMNS, CountsParam, MaxParam, ScoreBatches, result_fields

OUTPUT_TEMP = "__deepiqa"


@dataclass
class BroadcastModel:
    """A weights file read and checked once on the driver, broadcast to the executors."""

    meta: WeightsMeta
    sha256: str
    broadcast: Any
    loads: Any  # accumulator: model loads in Python workers, by device/precision
    peak_rss_mib: Any  # accumulator: peak Python worker memory

    @classmethod
    def create(cls, spark, weights: str | Path | bytes) -> BroadcastModel:
        """Loads the model here first: a file that cannot be loaded fails before any task."""
        data = read_weights(weights)
        _, meta = load_weights(data)
        sc = spark.sparkContext
        return cls(
            meta=meta,
            sha256=weights_sha256(data),
            broadcast=sc.broadcast(data),
            loads=sc.accumulator({}, CountsParam()),
            peak_rss_mib=sc.accumulator(0, MaxParam()),
        )

    @property
    def full_reference(self) -> bool:
        return self.meta.variant.endswith("-fr")

    def udf(
        self,
        options: ScoringOptions,
        *,
        torch_threads: int | None = None,
        fail_once_marker: str | None = None,
    ):
        """The pandas UDF: columns as ``INPUT_COLUMNS`` -> a struct of ``result_fields``."""
        body = ScoreBatches(
            self.broadcast,
            self.sha256,
            options,
            self.loads,
            self.peak_rss_mib,
            torch_threads,
            fail_once_marker,
        )
        schema = ", ".join(f"{n} {t}" for n, t in result_fields(options.batch.with_patches))
        # Nondeterministic: Spark must call it exactly once per row (never re-evaluate it for
        # each field taken out of its struct).
        udf = pandas_udf(body.score_batches, schema)  # type: ignore[call-overload]  # iterator UDF
        return udf.asNondeterministic()

    def score(
        self,
        df: DataFrame,
        *,
        uri_col: str | None = "uri",
        bytes_col: str | None = None,
        ref_col: str | None = None,
        ref_bytes_col: str | None = None,
        id_col: str | None = None,
        tile_cols: tuple[str, str] | None = None,
        options: ScoringOptions | None = None,
        with_patches: bool = False,
        torch_threads: int | None = None,
        fail_once_marker: str | None = None,
    ) -> DataFrame:
        """``df`` with the score columns appended (see the module docstring)."""
        options = options or ScoringOptions()
        options = replace(options, batch=replace(options.batch, with_patches=with_patches))
        if uri_col is None and bytes_col is None:
            raise UsageError("give uri_col or bytes_col")
        if self.full_reference and ref_col is None and ref_bytes_col is None:
            raise UsageError(f"{self.meta.variant} is full-reference: give ref_col")
        fields = [n for n, _ in result_fields(with_patches)] + ["model", "model_sha256"]
        clash = sorted(set(fields) & set(df.columns))
        if clash:
            raise UsageError(f"the DataFrame already has columns named {clash}; rename them")
        names = {
            "id": id_col or uri_col,
            "uri": uri_col,
            "image": bytes_col,
            "ref_uri": ref_col,
            "ref_image": ref_bytes_col,
            "tile_row_start": tile_cols[0] if tile_cols else None,
            "tile_row_stop": tile_cols[1] if tile_cols else None,
        }
        args: list[Column] = [
            F.col(c).cast(t) if (c := names[n]) else F.lit(None).cast(t) for n, t in INPUT_COLUMNS
        ]
        udf = self.udf(options, torch_threads=torch_threads, fail_once_marker=fail_once_marker)
        scored = df.withColumn(OUTPUT_TEMP, udf(*args))
        return scored.select(
            *[F.col(f"`{c}`") for c in df.columns],
            *[F.col(f"{OUTPUT_TEMP}.{n}").alias(n) for n, _ in result_fields(with_patches)],
            F.lit(self.meta.variant).alias("model"),
            F.lit(self.sha256).alias("model_sha256"),
        )


def score_images(
    df: DataFrame,
    weights: str | Path | bytes,
    *,
    uri_col: str | None = "uri",
    bytes_col: str | None = None,
    ref_col: str | None = None,
    ref_bytes_col: str | None = None,
    options: ScoringOptions | None = None,
    with_patches: bool = False,
) -> DataFrame:
    """Score the images of ``df`` with a DeepIQA weights file.

    Parameters
    ----------
    df : DataFrame
        One row per image; any other columns are kept.
    weights : str, Path or bytes
        A deepiqa ``.safetensors`` file (read and validated on the driver, then broadcast).
    uri_col, bytes_col : str, optional
        Where each image is: a column of local paths / ``s3://`` URIs, or of image bytes
        (bytes win where both are set).
    ref_col, ref_bytes_col : str, optional
        Full-reference models: each image's reference, as a URI or bytes; a null reference
        gives ``error_code = 'unpaired'``. For speed, have rows that share a reference in the
        same partition (``df.repartition(ref_col).sortWithinPartitions(ref_col)``): each worker
        featurises a reference once.
    options : ScoringOptions, optional
        Patch grid, patch budget, pixel limit, device and precision (defaults: the paper's grid,
        the GPU Spark assigned to the task or the CPU, fp32).
    with_patches : bool
        Also return per-patch arrays ``patch_y``, ``patch_x``, ``patch_quality``,
        ``patch_weight`` (``explode_patches`` / ``aggregate_patches`` work on them).

    Returns
    -------
    DataFrame
        ``df``'s columns plus ``score`` (double, null when the image failed), ``num_patches``,
        ``in_range`` (whether the score lies in the model's declared range; null when it
        declares none), ``error_code`` and ``error_message`` (null when fine), ``model``,
        ``model_sha256``.
    """
    model = BroadcastModel.create(df.sparkSession, weights)
    return model.score(
        df,
        uri_col=uri_col,
        bytes_col=bytes_col,
        ref_col=ref_col,
        ref_bytes_col=ref_bytes_col,
        options=options,
        with_patches=with_patches,
    )
