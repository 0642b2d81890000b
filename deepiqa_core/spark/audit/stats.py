"""The numbers of an audit run, computed by Spark: only small results reach the driver.

Percentiles are ``percentile_approx`` with accuracy 10,000 (rank error under 0.01 %); the
histogram is bucket counts; the folder table is capped at the ``FOLDER_LIMIT`` largest folders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from ...audit.summary import Distribution

FOLDER_LIMIT = 200
BINS = 20
ACCURACY = 10_000


def _share(condition: Column, threshold: float | None) -> Column:
    if threshold is None:
        return F.lit(None).cast("double")
    return F.avg(F.when(F.col("score").isNotNull(), condition.cast("double")))


def distribution(rows: DataFrame, threshold: float | None) -> Distribution:
    """Images, scored, failed, p10/median/p90/mean, share below ``threshold``, error rate."""
    q = F.percentile_approx("score", [0.1, 0.5, 0.9], ACCURACY)
    row = rows.agg(
        F.count(F.lit(1)).alias("images"),
        F.count("score").alias("scored"),
        F.sum(F.col("error_code").isNotNull().cast("long")).alias("failed"),
        q.alias("q"),
        F.avg("score").alias("mean"),
        _share(F.col("score") < F.lit(threshold), threshold).alias("share_below"),
    ).collect()[0]
    images = int(row["images"])
    quantiles = row["q"] or [None, None, None]
    return Distribution(
        images=images,
        scored=int(row["scored"]),
        failed=int(row["failed"] or 0),
        p10=_round(quantiles[0]),
        median=_round(quantiles[1]),
        p90=_round(quantiles[2]),
        mean=_round(row["mean"]),
        share_below=_round(row["share_below"], 6),
        error_rate=_round((row["failed"] or 0) / images, 6) if images else None,
    )


def share(rows: DataFrame, op: str, threshold: float) -> float | None:
    """Share of the scored rows whose score is below (``<``) or above (``>``) ``threshold``."""
    cond = F.col("score") < threshold if op == "<" else F.col("score") > threshold
    value = rows.agg(_share(cond, threshold)).collect()[0][0]
    return _round(value, 6)


def _round(value: object, digits: int = 4) -> float | None:
    """``value`` rounded (Spark returns Decimal, float or None)."""
    return None if value is None else round(float(value), digits)  # type: ignore[arg-type]


def histogram(
    library: DataFrame, run: DataFrame | None, low: float, high: float, bins: int = BINS
) -> dict[str, Any]:
    """Counts of scores in ``bins`` equal bins over [low, high] (outside: the end bins)."""
    width = (high - low) / bins if high > low else 1.0
    edges = [round(low + i * width, 6) for i in range(bins + 1)]

    def counts(rows: DataFrame | None) -> list[int]:
        out = [0] * bins
        if rows is None:
            return out
        b = F.least(F.greatest(F.floor((F.col("score") - low) / width), F.lit(0)), F.lit(bins - 1))
        scored = rows.where(F.col("score").isNotNull()).select(b.cast("int").alias("b"))
        for r in scored.groupBy("b").count().collect():
            out[r["b"]] = int(r["count"])
        return out

    return {"edges": edges, "library": counts(library), "run": counts(run)}


def score_bounds(rows: DataFrame, bins: int = BINS) -> tuple[float, float]:
    """The histogram's range for weights that declare none: the scores' range widened to
    round numbers (bins of 1, 2 or 5 times a power of ten), so the axis reads well."""
    row = rows.agg(F.min("score"), F.max("score")).collect()[0]
    low, high = row[0], row[1]
    if low is None:
        return 0.0, 1.0
    span = max(float(high) - float(low), 1e-9)
    step = 10 ** math.floor(math.log10(span / bins))
    width = next(m * step for m in (1, 2, 5, 10) if m * step * bins >= span)
    start = math.floor(float(low) / width) * width
    while start + width * bins < float(high):  # the floor may push the top out: widen
        width = next(m * step for m in (2, 5, 10, 20, 50) if m * step > width)
        start = math.floor(float(low) / width) * width
    return start, start + width * bins


def _folder() -> Column:
    """An image's folder: the uri (or id) up to its last ``/``."""
    return F.regexp_extract(F.coalesce(F.col("uri"), F.col("id")), r"^(.*)/[^/]*$", 1)


def folders(
    rows: DataFrame, root: str, threshold: float | None, limit: int = FOLDER_LIMIT
) -> tuple[list[dict[str, Any]], bool]:
    """Per folder (the image's parent, relative to ``root``): count, median, p10, share below
    the threshold, failed; the ``limit`` largest, and whether there were more."""
    q = F.percentile_approx("score", [0.1, 0.5], ACCURACY)
    grouped = (
        rows.withColumn("folder", _folder())
        .groupBy("folder")
        .agg(
            F.count(F.lit(1)).alias("count"),
            q.alias("q"),
            _share(F.col("score") < F.lit(threshold), threshold).alias("share_below"),
            F.sum(F.col("error_code").isNotNull().cast("long")).alias("failed"),
        )
        .orderBy(F.desc("count"), "folder")
        .limit(limit + 1)
        .collect()
    )
    prefix = root.rstrip("/")
    table = []
    for r in grouped[:limit]:
        name = r["folder"]
        if prefix and name.startswith(prefix):
            name = name[len(prefix) :].lstrip("/") or "."
        quantiles = r["q"] or [None, None]
        table.append(
            {
                "folder": name,
                "count": int(r["count"]),
                "median": _round(quantiles[1]),
                "p10": _round(quantiles[0]),
                "share_below": _round(r["share_below"], 6),
                "failed": int(r["failed"] or 0),
            }
        )
    return table, len(grouped) > limit


def folder_count(rows: DataFrame) -> int:
    """How many folders the library has (approximate beyond a few thousand: 1 % error)."""
    return int(rows.agg(F.approx_count_distinct(_folder(), 0.01)).collect()[0][0])


def extremes(
    rows: DataFrame, n: int, higher_better: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``n`` worst and ``n`` best scored rows (id, uri, score), worst first / best first."""
    scored = rows.where(F.col("score").isNotNull()).select("id", "uri", "score")
    low = [r.asDict() for r in scored.orderBy(F.asc("score"), "id").limit(n).collect()]
    high = [r.asDict() for r in scored.orderBy(F.desc("score"), "id").limit(n).collect()]
    return (low, high) if higher_better else (high, low)


def errors(rows: DataFrame, examples: int = 20) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Failures by code, and a few example rows (uri, code, message)."""
    failed = rows.where(F.col("error_code").isNotNull())
    counts = {
        r["error_code"]: int(r["count"]) for r in failed.groupBy("error_code").count().collect()
    }
    sample = failed.select("uri", "id", "error_code", "error_message").orderBy("error_code", "id")
    rows_out = [
        {
            "uri": r["uri"] or r["id"],
            "error_code": r["error_code"],
            "error_message": r["error_message"],
        }
        for r in sample.limit(examples).collect()
    ]
    return dict(sorted(counts.items())), rows_out


CHANGES_CAP = 50  # rows per list in summary.json and the report; the counts are complete
CHANGE_LISTS = ("new", "changed", "removed", "newly_failing", "recovered")


@dataclass
class Changes:
    """What changed since the previous run, as Spark frames: ``new`` (reason new),
    ``rescored`` (rescored rows with ``before``/``before_error`` and ``drop``: + = worse in
    the score's direction) and ``removed``. ``lists`` brings the capped lists to the driver."""

    new: DataFrame
    rescored: DataFrame
    removed: DataFrame
    empty: bool = False  # the run's history has no rows: every list and count is 0, uncounted

    def changed(self) -> DataFrame:
        """Images whose content changed and that have a score before and after."""
        return self.rescored.where(
            (F.col("reason") == "changed")
            & F.col("score").isNotNull()
            & F.col("before").isNotNull()
        )

    def worse(self, by: float) -> int:
        return 0 if self.empty else self.changed().where(F.col("drop") > by).count()

    def new_below(self, threshold: float) -> int:
        return 0 if self.empty else self.new.where(F.col("score") < threshold).count()

    def lists(self, cap: int = CHANGES_CAP) -> dict[str, Any]:
        if self.empty:
            return {name: {"count": 0, "rows": []} for name in CHANGE_LISTS}
        failing = self.rescored.where(
            F.col("error_code").isNotNull() & F.col("before_error").isNull()
        )
        recovered = self.rescored.where(
            F.col("error_code").isNull() & F.col("before_error").isNotNull()
        )
        frames = {  # in CHANGE_LISTS order
            "new": self.new.orderBy(F.asc_nulls_first("score"), "id"),
            "changed": self.changed().orderBy(F.desc("drop"), "id"),
            "removed": self.removed.orderBy("id"),
            "newly_failing": failing.orderBy("id"),
            "recovered": recovered.orderBy("id"),
        }
        columns = {
            "new": ["uri", "score", "error_code"],
            "changed": ["uri", "before", "score", "drop"],
            "removed": ["uri", "score"],
            "newly_failing": ["uri", "before", "error_code", "error_message"],
            "recovered": ["uri", "before_error", "score"],
        }
        out = {}
        for name, frame in frames.items():
            rows = frame.select("id", *columns[name]).limit(cap).collect()
            out[name] = {
                "count": frame.count(),
                "rows": [_change_row(r.asDict()) for r in rows],
            }
        return out


def _change_row(row: dict[str, Any]) -> dict[str, Any]:
    row["uri"] = row["uri"] or row["id"]
    for key in ("score", "before", "drop"):
        if key in row:
            row[key] = _round(row[key])
    return row


def changes(
    history: DataFrame, previous: DataFrame | None, higher_better: bool, empty: bool = False
) -> Changes:
    """This run's ``history`` rows against the ``previous`` snapshot (None on a first run);
    ``empty``: the caller knows the history has no rows (no job is run for the lists)."""
    scored = history.where(F.col("event") == "scored")
    new = scored.where(F.col("reason") == "new")
    if previous is None:
        before = scored.sparkSession.createDataFrame(
            [], "id string, before double, before_error string"
        )
    else:
        before = previous.where(~F.col("removed")).select(
            "id", F.col("score").alias("before"), F.col("error_code").alias("before_error")
        )
    drop = F.col("before") - F.col("score") if higher_better else F.col("score") - F.col("before")
    rescored = (
        scored.where(F.col("reason") != "new")
        .join(before, on="id", how="inner")
        .withColumn("drop", drop)
    )
    removed = history.where(F.col("event") == "removed")
    return Changes(new, rescored, removed, empty)
