"""Where a run's files go, seen from the process that publishes it: one small protocol.

``Storage`` is what the run protocol (``runs.publish``, ``runs.leases``, the audit's state) needs
of a file system: list, read and write small files, rename, create-if-absent, delete. Back ends:

* ``LocalStorage``: Python's own files (a path or ``file:``), for the Beam job's local outputs;
* ``S3Storage``: ``s3://`` through boto3 (no rename: published by pointer);
* ``spark.storage.HadoopStorage``: the cluster's Hadoop file system layer (Spark's writers);
* ``beam.storage.FileSystemsStorage``: Beam's ``FileSystems`` (``gs://`` and friends).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from ..sources import s3_client, split_s3


class Storage(Protocol):
    atomic_rename: bool

    def exists(self, uri: str) -> bool: ...
    def list(self, uri: str) -> list[str]: ...
    def mkdirs(self, uri: str) -> None: ...
    def delete(self, uri: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def read_text(self, uri: str) -> str | None: ...
    def write_text(self, uri: str, text: str) -> None: ...
    def write_bytes(self, uri: str, data: bytes) -> None: ...
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
            return str(s3_client().get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except Exception:  # noqa: BLE001 - absent (or unreadable): the caller decides
            return None

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode())

    def write_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = self._key(uri)
        s3_client().put_object(Bucket=bucket, Key=key, Body=data)

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
        return float(s3_client().head_object(Bucket=bucket, Key=key)["LastModified"].timestamp())


@dataclass
class LocalStorage:
    """Python's own files: a plain path or a ``file:`` URI (directory rename is atomic)."""

    atomic_rename: bool = True

    @staticmethod
    def _p(uri: str) -> Path:
        return Path(local_path_of(uri) or uri)

    def exists(self, uri: str) -> bool:
        return self._p(uri).exists()

    def list(self, uri: str) -> list[str]:
        path = self._p(uri)
        return sorted(os.listdir(path)) if path.is_dir() else []

    def mkdirs(self, uri: str) -> None:
        self._p(uri).mkdir(parents=True, exist_ok=True)

    def delete(self, uri: str) -> None:
        path = self._p(uri)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()

    def rename(self, src: str, dst: str) -> None:
        os.rename(self._p(src), self._p(dst))

    def read_text(self, uri: str) -> str | None:
        path = self._p(uri)
        return path.read_text(errors="replace") if path.is_file() else None

    def write_text(self, uri: str, text: str) -> None:
        self._p(uri).write_text(text)

    def write_bytes(self, uri: str, data: bytes) -> None:
        self._p(uri).write_bytes(data)

    def create_new(self, uri: str, text: str) -> bool:
        """``O_EXCL``: False when the file exists."""
        try:
            fd = os.open(self._p(uri), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return True

    def modified(self, uri: str) -> float:
        return self._p(uri).stat().st_mtime
