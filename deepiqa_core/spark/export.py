"""Moving Parquet datasets between Spark and ``s3://`` when the cluster has no S3 connector.

Both directions run on the executors, through boto3 and Arrow (``mapInArrow``), so column types
are exactly those of the Parquet files and nothing large passes through the driver:

* ``export_dataset``: each task writes its partition of a staged dataset as one object named by
  partition and attempt (``part-00007-1-<random>.parquet``) and returns the key; the driver keeps
  exactly the keys of the successful attempts and deletes anything else under the prefix (a
  failed attempt's object), so retries never duplicate rows -- the commit rule Spark's own
  committers follow.
* ``import_dataset``: the driver lists the objects and reads one footer for the schema; each task
  reads its objects whole (hive-style ``k=v`` folders become string columns, as a reader of the
  layout expects) and the rows are staged on the default file system once, so the job reads
  them as often as it likes without going back to S3.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

from ..runs.storage import S3Storage, join
from ..sources import s3_client, split_s3

FORMATS = {"parquet": ".parquet", "csv": ".csv"}


@dataclass(frozen=True)
class _WriteParts:
    """mapInArrow body: one object per task (pickled by name)."""

    prefix: str
    fmt: str

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow.csv as pcsv
        from pyspark import TaskContext

        received = list(batches)
        table = pa.Table.from_batches(received) if received else None
        if table is None or table.num_rows == 0:
            return
        ctx = TaskContext.get()
        if ctx is None:
            raise RuntimeError("_WriteParts runs in a Spark task (mapInArrow)")
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
    if not committed and fmt == "parquet":  # no rows: one empty file keeps the schema, as Spark
        empty = to_arrow_schema(frame.schema).empty_table()
        buf = io.BytesIO()
        pq.write_table(empty, buf)
        bucket, key = split_s3(join(target, "part-00000-0-empty.parquet"))
        s3_client().put_object(Bucket=bucket, Key=key, Body=buf.getvalue())
        return 1
    return len(committed)


def _partition_values(root: str, uri: str) -> dict[str, str]:
    """The ``k=v`` folders between ``root`` and the object ``uri`` (hive-style partitions)."""
    folders = uri[len(root.rstrip("/")) + 1 :].split("/")[:-1]
    return dict(f.split("=", 1) for f in folders if "=" in f)


def _data_objects(root: str) -> list[str]:
    """The Parquet objects of a dataset, as Spark's reader picks them (no ``_``/``.`` names)."""
    return sorted(
        u
        for u in S3Storage().objects(root)
        if u.endswith(".parquet")
        and not any(p.startswith(("_", ".")) for p in u[len(root.rstrip("/")) + 1 :].split("/"))
    )


class _RangeReader(io.RawIOBase):
    """One S3 object as a seekable file, read by ranged GETs (a footer without the rows)."""

    def __init__(self, uri: str):
        self._bucket, self._key = split_s3(uri)
        head = s3_client().head_object(Bucket=self._bucket, Key=self._key)
        self._size, self._pos = int(head["ContentLength"]), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        span = f"bytes={self._pos}-{self._pos + n - 1}"
        data = s3_client().get_object(Bucket=self._bucket, Key=self._key, Range=span)["Body"].read()
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in order and types (absent ones null), as Spark
    expects a ``mapInArrow`` result (an earlier file may lack a later optional column)."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass(frozen=True)
class _ReadParts:
    """mapInArrow body: the objects named in its rows, as batches of ``schema``."""

    root: str
    schema: pa.Schema

    def __call__(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for uri in batch.column("uri").to_pylist():
                bucket, key = split_s3(uri)
                body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
                table = pq.read_table(io.BytesIO(body))
                for name, value in _partition_values(self.root, uri).items():
                    if name not in table.column_names:
                        table = table.append_column(name, pa.array([value] * table.num_rows))
                yield from _conform(table, self.schema).to_batches()


def import_dataset(spark: SparkSession, source: str, staged: str) -> DataFrame | None:
    """The Parquet dataset at ``source`` (``s3://``), staged at ``staged`` (Spark-writable) and
    read from there; None when ``source`` holds no Parquet object. Its schema is the first
    object's plus any ``k=v`` partition folders (strings)."""
    uris = _data_objects(source)
    if not uris:
        return None
    with _RangeReader(uris[0]) as first:
        fields = list(pq.read_schema(first))
    names = {f.name for f in fields}
    for name in _partition_values(source, uris[0]):
        if name not in names:
            fields.append(pa.field(name, pa.string()))
    spark_schema = from_arrow_schema(pa.schema(fields))
    listing = spark.createDataFrame([(u,) for u in uris], "uri string")
    listing = listing.repartition(min(len(uris), 4 * spark.sparkContext.defaultParallelism))
    reader = _ReadParts(source, to_arrow_schema(spark_schema))
    listing.mapInArrow(reader, spark_schema).write.parquet(staged)
    return spark.read.parquet(staged)
