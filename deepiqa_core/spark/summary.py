"""A Spark scoring run's numbers: ``ScoreStats`` from the published scores table, and the
lines the Spark jobs print."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ..runs.summary import PERCENTILES, RunSummary, ScoreStats

# approxQuantile's relative rank error: each percentile is within 0.1 % of the rows of the exact
# one. Exact percentiles (0.0) collect every score on the driver: out of memory at 10M rows.
QUANTILE_ERROR = 1e-3


def score_stats(result: DataFrame, rows_in: int) -> ScoreStats:
    """Counts and score statistics of a published scores table."""
    errors = {
        r["error_code"]: r["count"]
        for r in result.where("error_code IS NOT NULL").groupBy("error_code").count().collect()
    }
    scored = result.where("score IS NOT NULL")
    quantiles = scored.approxQuantile("score", list(PERCENTILES), QUANTILE_ERROR)
    stats = result.agg(
        F.count("*").alias("rows"),
        F.count("score").alias("n"),
        F.mean("score").alias("mean"),
        F.count(F.when(~F.col("in_range"), 1)).alias("outside"),
    ).collect()[0]
    return ScoreStats.build(
        rows_in=rows_in,
        rows_out=stats["rows"],
        scored=stats["n"],
        errors=errors,
        out_of_range=stats["outside"],
        mean=stats["mean"],
        quantiles=quantiles,
        rank_error=QUANTILE_ERROR,
    )


def format_spark_summary(summary: RunSummary) -> str:
    facts = summary.engine_facts
    return summary.text(
        "deepiqa score",
        f"across {facts['partitions']} partitions; "
        f"peak Python worker memory {facts['worker_peak_rss_mib']} MiB",
    )
