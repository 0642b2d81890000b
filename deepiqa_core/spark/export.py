"""Copying a finished run to ``s3://`` when the cluster has no S3 connector (executor side).

Each task of one Spark job writes its partition of a staged dataset as one object named by
partition and attempt (``part-00007-1-<random>.parquet``) with boto3 and returns the key; the
driver keeps exactly the keys of the successful attempts and deletes anything else under the
prefix (a failed attempt's object), so retries never duplicate rows — the commit rule Spark's
own committers follow. Data goes through Arrow batches (``mapInArrow``), so column types are
exactly those of the staged Parquet.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
from pyspark.sql import SparkSession

from ..sources import s3_client, split_s3
from .storage import S3Storage, join

FORMATS = {"parquet": ".parquet", "csv": ".csv"}


@dataclass(frozen=True)
class _WriteParts:
    """mapInArrow body: one object per task (pickled by name)."""

    prefix: str
    fmt: str

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq
        from pyspark import TaskContext

        table = pa.Table.from_batches(list(batches))
        if table.num_rows == 0:
            return
        ctx = TaskContext.get()
        name = f"part-{ctx.partitionId():05d}-{ctx.attemptNumber()}-{uuid.uuid4().hex[:8]}"
        buf = io.BytesIO()
        if self.fmt == "csv":
            pcsv.write_csv(table, buf)
        else:
            pq.write_table(table, buf)
        uri = join(self.prefix, name + FORMATS[self.fmt])
        bucket, key = split_s3(uri)
        s3_client().put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
        yield pa.RecordBatch.from_pydict({"uri": [uri]})


def export_dataset(spark: SparkSession, source: str, target: str, fmt: str = "parquet") -> int:
    """Copy the Parquet dataset at ``source`` (Spark-readable) to ``target`` (``s3://``) as
    ``fmt``; returns the number of objects committed."""
    frame = spark.read.parquet(source)
    committed = {
        row.uri for row in frame.mapInArrow(_WriteParts(target, fmt), "uri string").collect()
    }
    storage = S3Storage()
    for name in storage.list(target):
        uri = join(target, name)
        if uri not in committed:  # an attempt that failed after writing
            storage.delete(uri)
    return len(committed)
