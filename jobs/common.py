"""Driver-side helpers shared by the spark-submit jobs: session set-up and atomic publishing.

Only the driver imports this module; code that runs on executors lives in deepiqa_core (installed
there) or in the job's own file (pickled by value).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

COMPLETE_MARKER = "_COMPLETE"


def spark_session(app_name: str, conf: dict[str, str]) -> SparkSession:
    """The job's session. The master comes from spark-submit (``local[*]`` when none is given).

    In local mode, Python workers use this driver's interpreter unless ``spark.pyspark.python``
    or ``PYSPARK_PYTHON`` says otherwise, so a virtual environment just works.
    """
    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_PYTHON" not in os.environ:
        builder = builder.config("spark.pyspark.python", sys.executable)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def job_main(
    app_name: str,
    parser: argparse.ArgumentParser,
    run: Callable[[SparkSession, list[str] | None], int],
    conf: Callable[[argparse.Namespace], dict[str, str]],
    argv: list[str] | None = None,
) -> int:
    """A job's ``main``: parse first (``--help`` and usage errors before Spark starts), then
    ``run`` on a fresh session that is stopped however the run ends."""
    args = parser.parse_args(argv)
    spark = spark_session(app_name, conf(args))
    try:
        return run(spark, argv)
    finally:
        spark.stop()


@contextmanager
def publish_atomically(target: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a private staging folder; on success it replaces ``target`` by rename.

    A run that crashes leaves only ``.<name>.staging-<id>`` beside the target, never a partial
    ``target``; ``target/_COMPLETE`` is written last inside staging, so readers can also check it.
    """
    target = target.absolute()
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    staging = target.parent / f".{target.name}.staging-{run_id}"
    staging.mkdir()
    try:
        yield staging
        (staging / COMPLETE_MARKER).write_text(run_id + "\n")
        old = target.parent / f".{target.name}.old-{run_id}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
