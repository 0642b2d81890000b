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
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

from ..exits import UsageError
from ..sources import S3_SCHEMES, s3_client, split_s3

# Hadoop file systems whose directory rename is atomic: published by rename. Everything else
# (object stores: s3a, gs, abfs, wasb, dbfs ...) is published by a pointer written last.
ATOMIC_RENAME_SCHEMES = ("file", "hdfs", "viewfs")


class Storage(Protocol):
    atomic_rename: bool

    def exists(self, uri: str) -> bool: ...
    def list(self, uri: str) -> list[str]: ...
    def mkdirs(self, uri: str) -> None: ...
    def delete(self, uri: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def read_text(self, uri: str) -> str | None: ...
    def write_text(self, uri: str, text: str) -> None: ...
    def create_new(self, uri: str, text: str) -> bool: ...
    def modified(self, uri: str) -> float: ...


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def local_path_of(uri: str) -> str | None:
    """The plain path a local output URI (a path, ``file:``) names; None for other schemes
    (the overlap checks against local inputs apply only to these)."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return None
    return parsed.path if parsed.scheme else uri


def parent_and_name(uri: str) -> tuple[str, str]:
    trimmed = uri.rstrip("/")
    parent, _, name = trimmed.rpartition("/")
    return parent or "/", name


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
        stream = self._fs.create(self._path(uri), True)
        try:
            stream.write(bytearray(text.encode()))
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


@dataclass
class S3Storage:
    """``s3://bucket/prefix`` through boto3 (no rename: published by pointer)."""

    atomic_rename: bool = False

    @staticmethod
    def _key(uri: str) -> tuple[str, str]:
        return split_s3(uri)

    def _keys(self, uri: str) -> list[str]:
        bucket, prefix = self._key(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def objects(self, uri: str) -> list[str]:
        """Every object under the prefix ``uri``, as URIs of ``uri``'s scheme."""
        bucket, _ = self._key(uri)
        scheme = uri.split("://", 1)[0]
        return [f"{scheme}://{bucket}/{key}" for key in self._keys(uri)]

    def exists(self, uri: str) -> bool:
        bucket, key = self._key(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except Exception:  # noqa: BLE001 - not a single object: maybe a "folder"
            return bool(self._keys(uri)[:1])

    def list(self, uri: str) -> list[str]:
        bucket, prefix = self._key(uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        names = {key[len(prefix) :].split("/", 1)[0] for key in self._keys(uri)}
        return sorted(n for n in names if n)

    def mkdirs(self, uri: str) -> None:
        """Object stores have no folders."""

    def delete(self, uri: str) -> None:
        bucket, _ = self._key(uri)
        keys = self._keys(uri)
        single = self._key(uri)[1]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            s3_client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        s3_client().delete_object(Bucket=bucket, Key=single)

    def rename(self, src: str, dst: str) -> None:
        raise OSError("S3 has no rename; outputs there are published by pointer")

    def read_text(self, uri: str) -> str | None:
        bucket, key = self._key(uri)
        try:
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        except Exception:  # noqa: BLE001 - absent (or unreadable): the caller decides
            return None

    def write_text(self, uri: str, text: str) -> None:
        bucket, key = self._key(uri)
        s3_client().put_object(Bucket=bucket, Key=key, Body=text.encode())

    def create_new(self, uri: str, text: str) -> bool:
        """A conditional PUT (``If-None-Match: *``): False when the object exists."""
        bucket, key = self._key(uri)
        try:
            s3_client().put_object(Bucket=bucket, Key=key, Body=text.encode(), IfNoneMatch="*")
        except Exception as exc:  # noqa: BLE001 - botocore's ClientError
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def modified(self, uri: str) -> float:
        bucket, key = self._key(uri)
        return s3_client().head_object(Bucket=bucket, Key=key)["LastModified"].timestamp()


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
