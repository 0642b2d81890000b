"""Where outputs go: the cluster's file system layer, seen from the driver.

Every output URI goes through one of two ``Storage`` back ends, never Python's local ``open``:

* ``HadoopStorage``: the Hadoop ``FileSystem`` of the running Spark (via py4j) for any URI the
  cluster can write: plain paths (resolved against ``fs.defaultFS``, as Spark's writers resolve
  them: HDFS on EMR/Dataproc, DBFS on Databricks, the local disk in local mode), ``file:``,
  ``hdfs:``, ``s3a:``/``s3:`` where the cluster has an S3 connector, ``gs:``, ``abfss:``,
  ``dbfs:``. Spark's writers and this class see the same files.
* ``S3Storage``: boto3, for ``s3://`` (``s3a``, ``s3n``) when the cluster has no S3 connector
  (no hadoop-aws jars: local mode, plain clusters). Spark cannot write there itself, so the job
  stages its output on the default file system and exports it with an executor-side writer
  (``export``).

A scheme that neither handles is a usage error before anything is scored.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from ..errors import UsageError
from ..runs.storage import S3Storage, Storage, local_path_of
from ..sources import S3_SCHEMES, split_s3

# Hadoop file systems whose directory rename is atomic: published by rename. Everything else
# (object stores: s3a, gs, abfs, wasb, dbfs ...) is published by a pointer written last.
ATOMIC_RENAME_SCHEMES = ("file", "hdfs", "viewfs")


class HadoopStorage:
    """The JVM's Hadoop FileSystem for ``uri`` (raises UsageError if none serves its scheme)."""

    def __init__(self, spark: Any, uri: str):
        self._jvm = spark._jvm
        self._conf = spark._jsc.hadoopConfiguration()
        path = self._path(uri)
        try:
            self._fs = path.getFileSystem(self._conf)
        except Exception as exc:  # py4j: UnsupportedFileSystemException and friends
            scheme = urlparse(uri).scheme or "default"
            raise UsageError(
                f"--output {uri}: this Spark cannot write {scheme}:// (no Hadoop file system "
                f"for it: {str(exc).splitlines()[0][:200]})"
            ) from exc
        self.scheme = self._fs.getUri().getScheme() or "file"
        self.atomic_rename = self.scheme in ATOMIC_RENAME_SCHEMES
        if hasattr(self._fs, "setWriteChecksum"):
            self._fs.setWriteChecksum(False)  # no .crc files beside our small files

    def _path(self, uri: str) -> Any:
        return self._jvm.org.apache.hadoop.fs.Path(uri)

    def qualify(self, uri: str) -> str:
        """The full URI Spark will use for ``uri`` (a plain path gains the default FS)."""
        return str(self._fs.makeQualified(self._path(uri)).toString())

    def exists(self, uri: str) -> bool:
        return bool(self._fs.exists(self._path(uri)))

    def list(self, uri: str) -> list[str]:
        if not self.exists(uri):
            return []
        if self.scheme == "file":  # Hadoop cannot name a local entry with ':' (URISyntaxException)
            return sorted(os.listdir(self._fs.pathToFile(self._path(uri)).getPath()))
        return sorted(str(s.getPath().getName()) for s in self._fs.listStatus(self._path(uri)))

    def mkdirs(self, uri: str) -> None:
        self._fs.mkdirs(self._path(uri))

    def delete(self, uri: str) -> None:
        self._fs.delete(self._path(uri), True)

    def rename(self, src: str, dst: str) -> None:
        if not self._fs.rename(self._path(src), self._path(dst)):
            raise OSError(f"could not rename {src} to {dst}")

    def read_text(self, uri: str) -> str | None:
        if not self.exists(uri):
            return None
        stream = self._fs.open(self._path(uri))
        try:
            data = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return bytes(data).decode()

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode())

    def write_bytes(self, uri: str, data: bytes) -> None:
        stream = self._fs.create(self._path(uri), True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def create_new(self, uri: str, text: str) -> bool:
        """Write ``uri`` only if it does not exist (False if it does): atomic on HDFS and on a
        local disk (``O_EXCL``: Hadoop's local create checks, then opens), a check-then-create
        on S3A (``leases`` reads back to settle the rest)."""
        local = local_path_of(uri) if self._fs.getScheme() == "file" else None
        if local is not None:
            try:
                fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                f.write(text)
            return True
        try:
            stream = self._fs.create(self._path(uri), False)
        except Exception as exc:  # noqa: BLE001 - py4j wraps Java's exception
            if "FileAlreadyExists" in str(exc) or self.exists(uri):
                return False
            raise
        try:
            stream.write(bytearray(text.encode()))
        finally:
            stream.close()
        return True

    def modified(self, uri: str) -> float:
        return self._fs.getFileStatus(self._path(uri)).getModificationTime() / 1000.0


HADOOP_PATTERN_CHARS = "[]{}*?\\"  # Hadoop's glob syntax, in any path Spark reads


def hadoop_glob_escape(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped, so Spark reads that one path."""
    return "".join("\\" + ch if ch in HADOOP_PATTERN_CHARS else ch for ch in path)


def check_plain_output(uri: str, flag: str = "--output") -> None:
    """Refuse, before any work, an output Spark would read back as a pattern: a job reads its
    own outputs (chunks, the audit's snapshot), and Hadoop takes ``[ ] { } * ? \\`` in a path
    as glob syntax (once: the job scored everything, then failed with PATH_NOT_FOUND)."""
    if not uri.strip():
        raise UsageError(f"{flag} needs a path")
    found = sorted({ch for ch in uri if ch in HADOOP_PATTERN_CHARS})
    if found:
        raise UsageError(
            f"{flag} {uri}: Spark reads {' '.join(found)} in a path as a pattern; "
            "choose a name without [ ] { } * ? \\"
        )


def storage_for(spark: Any, uri: str, flag: str = "--output") -> tuple[Storage, bool]:
    """The storage for an output ``uri`` (``check_plain_output`` first) and whether Spark can
    write there itself."""
    check_plain_output(uri, flag)
    scheme = urlparse(uri).scheme
    if scheme in S3_SCHEMES:
        try:
            return HadoopStorage(spark, uri), True  # the cluster's own S3 connector
        except UsageError:
            if not split_s3(uri)[0]:
                raise UsageError(f"--output {uri}: no bucket") from None
            return S3Storage(), False
    return HadoopStorage(spark, uri), True
