"""Publishing a Spark job's output: the run protocol (``runs.publish``) on the file system the
cluster writes (driver side).

Rename on ``file:``/``hdfs:`` (``HadoopStorage.atomic_rename``), a pointer on object stores
Spark writes through a Hadoop connector (``s3a:``, ``gs:``, ``abfss:``, ``dbfs:``), and for
``s3://`` without an S3 connector a pointer too, with the work folder on the default file system
(``staging_folder``) and the finished datasets copied by an executor-side writer (``export``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import UsageError
from ..runs.publish import Run, pointer_run, rename_run
from ..runs.storage import join
from .storage import HadoopStorage, storage_for

STAGING_ROOT = "/tmp/deepiqa-staging"


@contextmanager
def publish(
    spark: Any,
    target: str,
    *,
    overwrite: bool,
    resume: bool = False,
    key: str,
    kind: str = "score",
    export: Callable[[Run], None] | None = None,
) -> Iterator[Run]:
    """A work folder for one run of ``target``; published when the block completes.

    ``export(run)`` copies the finished work folder to an ``s3://`` target through boto3 (only
    called when Spark cannot write the target itself).
    """
    storage, spark_writes = storage_for(spark, target)
    if isinstance(storage, HadoopStorage):
        target = storage.qualify(target)
    if spark_writes and storage.atomic_rename:
        with rename_run(storage, target, overwrite, resume, key, kind) as run:
            yield run
        return
    if spark_writes:
        with pointer_run(storage, target, overwrite, resume, key, kind) as run:
            yield run
        return
    if export is None:
        raise UsageError(f"--output {target}: Spark cannot write there and this job cannot export")
    default_fs, root = staging_folder(spark, target)
    with pointer_run(
        storage, target, overwrite, resume, key, kind, default_fs, root, export
    ) as run:
        yield run


def staging_folder(spark: Any, target: str) -> tuple[HadoopStorage, str]:
    """Where work for an ``s3://`` target Spark cannot write lives: ``STAGING_ROOT/<hash of
    the target>`` on the default file system (one folder per target, so the next run for the
    same target finds what a killed one left; the target's lease makes it this run's alone)."""
    default_fs = HadoopStorage(spark, STAGING_ROOT)
    name = hashlib.sha256(target.encode()).hexdigest()[:12]
    return default_fs, join(default_fs.qualify(STAGING_ROOT), name)
