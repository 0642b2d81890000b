"""The run protocol's ``Storage`` over Beam's ``FileSystems`` (``gs://``, ``s3://`` with Beam's
AWS extra, ``hdfs://`` ...): what the Beam job publishes remote outputs through. Object stores
have no rename: outputs there are published by pointer."""

from __future__ import annotations

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ..runs.storage import join


def files_under(uri: str) -> list[str]:
    """Every file below ``uri`` (a folder or prefix), at any depth."""
    found = FileSystems.match([join(uri, "**")])[0].metadata_list
    return sorted(m.path for m in found)


class FileSystemsStorage:
    """``runs.storage.Storage`` through Beam's FileSystems (create-if-absent is a check, then a
    write: the lease's read-back settles the rest, as on S3A)."""

    atomic_rename = False

    def exists(self, uri: str) -> bool:
        return bool(FileSystems.exists(uri)) or bool(files_under(uri))

    def list(self, uri: str) -> list[str]:
        prefix = uri.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/", 1)[0] for p in files_under(uri)}
        return sorted(n for n in names if n)

    def mkdirs(self, uri: str) -> None:
        """Object stores have no folders."""

    def delete(self, uri: str) -> None:
        files = files_under(uri)
        if FileSystems.exists(uri):
            files.append(uri)
        if files:
            FileSystems.delete(files)

    def rename(self, src: str, dst: str) -> None:
        raise OSError("no atomic rename here; outputs are published by pointer")

    def read_text(self, uri: str) -> str | None:
        if not FileSystems.exists(uri):
            return None
        with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            return str(f.read().decode())

    def write_text(self, uri: str, text: str) -> None:
        self.write_bytes(uri, text.encode())

    def write_bytes(self, uri: str, data: bytes) -> None:
        with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(data)

    def create_new(self, uri: str, text: str) -> bool:
        if FileSystems.exists(uri):
            return False
        self.write_text(uri, text)
        return True

    def modified(self, uri: str) -> float:
        return float(FileSystems.match([uri])[0].metadata_list[0].last_updated_in_seconds)
