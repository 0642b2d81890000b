"""Driver side of every ``spark-submit`` job: the session, and the one ``main`` wrapper."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pyspark.sql import SparkSession

from ..exits import run_entry

# Defaults for every job's session; a setting given to spark-submit (--conf) or in
# spark-defaults.conf is kept (``spark_session``), so the driver's memory can be tuned.
QUIET = {
    "spark.log.level": "WARN",
    # the driver keeps UI records of every task; a 10M-row run has tens of thousands
    "spark.ui.retainedTasks": "10000",
    "spark.ui.retainedStages": "200",
    "spark.ui.retainedJobs": "200",
    "spark.sql.ui.retainedExecutions": "50",
}


def spark_session(app_name: str, conf: dict[str, str]) -> SparkSession:
    """The job's session. The master comes from spark-submit (``local[*]`` when none is given).

    In local mode, Python workers use this driver's interpreter unless ``spark.pyspark.python``
    or ``PYSPARK_PYTHON`` says otherwise, so a virtual environment just works. Started by plain
    ``python`` (``deepiqa audit``: no spark-submit, no ``PYSPARK_GATEWAY_PORT``), PySpark reads
    only the environment variable, so it is set too.
    """
    builder = SparkSession.builder.appName(app_name)
    if "PYSPARK_PYTHON" not in os.environ:
        builder = builder.config("spark.pyspark.python", sys.executable)
        if "PYSPARK_GATEWAY_PORT" not in os.environ:  # this process starts the JVM
            os.environ["PYSPARK_PYTHON"] = sys.executable
    given = _given_settings()
    for key, value in conf.items():
        if key not in given:  # the job's defaults; the user's --conf and spark-defaults win
            builder = builder.config(key, value)
    return builder.getOrCreate()


def _given_settings() -> set[str]:
    """The settings spark-submit already holds (``--conf``, ``spark-defaults.conf``): they live
    in the JVM that started this driver, so the gateway is joined first (or started, for a
    driver run by plain ``python``, as ``getOrCreate`` would)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return {key for key, _ in SparkConf().getAll()}


def driver_file(path: Path) -> Path:
    """``path``, or the driver's copy of a file shipped with ``spark-submit --files`` under
    that name. In cluster deploy mode the shipped file is in the driver's working folder (the
    bare name works); in client mode it is only in SparkFiles' folder. One ``--weights NAME``
    with ``--files /path/NAME`` then works in both modes (the Airflow DAG relies on it)."""
    if path.is_file() or path.is_absolute() or len(path.parts) != 1:
        return path
    from pyspark import SparkFiles

    try:
        shipped = Path(SparkFiles.get(path.name))
    except Exception:  # noqa: BLE001 - no SparkContext: nothing was shipped
        return path
    return shipped if shipped.is_file() else path


def run_job(
    prog: str,
    parser: argparse.ArgumentParser,
    body: Callable[[SparkSession, argparse.Namespace], int],
    argv: Sequence[str] | None = None,
    *,
    conf: Callable[[argparse.Namespace], dict[str, str]] = lambda _: {},
    spark: SparkSession | None = None,
) -> int:
    """A job's ``main``: parse first (``--help`` and usage errors before Spark starts), then run
    ``body`` on a session, mapping exceptions to exit codes (``deepiqa_core.exits``).

    ``spark``: an existing session to use (and leave running), e.g. a test's; otherwise a new
    one is made from ``conf`` and stopped however the run ends. A given session gets the
    settings of ``conf`` that can change at run time.
    """
    args = parser.parse_args(argv)
    name = prog.split()[-1]

    def run() -> int:
        settings = {**QUIET, **conf(args)}
        if spark is not None:
            for key, value in settings.items():
                if spark.conf.isModifiable(key):  # the rest only apply when a session starts
                    spark.conf.set(key, value)
            return body(spark, args)
        session = spark_session(f"deepiqa-{name.removesuffix('.py')}", settings)
        try:
            return body(session, args)
        finally:
            session.stop()

    return run_entry(name, run)
