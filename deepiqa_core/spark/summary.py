"""A scoring run's summary: counts, errors by code, score percentiles, speed, model loads."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .. import summaries

PERCENTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# approxQuantile's relative rank error: each percentile is within 0.1 % of the rows of the exact
# one. Exact percentiles (0.0) collect every score on the driver: out of memory at 10M rows.
QUANTILE_ERROR = 1e-3


def summarise(result: DataFrame, rows_in: int) -> dict:
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
    ).first()
    return {
        "rows_in": rows_in,
        "rows_out": stats["rows"],
        "scored": stats["n"],
        "failed": sum(errors.values()),
        "errors_by_code": dict(sorted(errors.items())),
        "out_of_range": stats["outside"],
        "score_mean": stats["mean"],
        "score_percentiles": dict(
            zip([f"p{int(q * 100)}" for q in PERCENTILES], quantiles, strict=False)
        ),
        "percentile_rank_error": QUANTILE_ERROR,
    }


def format_summary(summary: dict) -> str:
    return summaries.format_summary(
        summary,
        "deepiqa score",
        f"across {summary['partitions']} partitions; "
        f"peak Python worker memory {summary['worker_peak_rss_mib']} MiB",
    )
