"""The FR join: the pairing rule of ``deepiqa_core.pairing``, as a Spark left join.

The same regular expressions run in ``regexp_extract`` here and in Python's ``re`` in the CLI,
so both pair the same files (tested on tricky names).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from ..pairing import DEFAULT_PAIR_REGEX, STEM_REGEX


def _nonempty(column):
    return F.when(column != "", column)


def attach_references(
    items: DataFrame, references: DataFrame, pair_regex: str = DEFAULT_PAIR_REGEX
) -> DataFrame:
    """``items`` (with ``uri``) gain ``ref_uri`` from ``references`` (a ``ref_uri`` column):
    the reference whose stem is the image's key; null when there is none (``unpaired``)."""
    stem = F.regexp_extract("ref_uri", STEM_REGEX, 1)
    refs = references.select("ref_uri").where(F.col("ref_uri").isNotNull())
    refs = refs.withColumn("_key", _nonempty(stem)).where(F.col("_key").isNotNull())
    first = Window.partitionBy("_key").orderBy("ref_uri")  # a shared stem: the smallest uri
    refs = refs.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")
    image_stem = F.regexp_extract(F.coalesce(F.col("uri"), F.lit("")), STEM_REGEX, 1)
    key = _nonempty(F.regexp_extract(image_stem, pair_regex, 1))
    keyed = items.drop("ref_uri").withColumn("_key", key)
    return keyed.join(refs, on="_key", how="left").drop("_key")
