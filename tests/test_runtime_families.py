"""The second supported package set: scoring on Spark 3.5 with current pyarrow/numpy/pandas.

Managed runtimes (EMR 7, Dataproc 2.2, Databricks 14-16 LTS) run Spark 3.5. This builds (once,
cached outside the checkout) the environment of ``constraints-spark35.txt`` and runs the scoring
tests in it: the embedded-default spark-submit, the job on folders, manifests, S3, FR pairs and
tiles, the public API and outputs through the file system layer.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCORING_TESTS = [
    "tests/test_score_job.py",
    "tests/test_spark_api.py",
    "tests/test_cluster.py",
    "tests/test_spark_submit.py::test_embedded_default_scores_the_bundled_samples",
    # the kill-and-resume run passed here too (by hand); CI keeps it to the main family
    "--deselect",
    "tests/test_cluster.py::test_a_killed_run_resumes_and_gives_exactly_the_uninterrupted_rows",
]


@pytest.mark.slow
def test_scoring_runs_on_the_spark_35_family():
    made = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-spark35.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    python = Path(made.stdout.strip().splitlines()[-1]) / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for key in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "AWS_ENDPOINT_URL"):
        env.pop(key, None)  # the inner run makes its own Spark and S3 endpoint
    probe = "import pyspark, pyarrow, numpy, pandas, deepiqa_core.spark as s; "
    probe += "print(pyspark.__version__, pyarrow.__version__, numpy.__version__, s.__file__)"
    versions = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, env=env)
    assert versions.returncode == 0, versions.stderr
    spark, arrow, numpy, where = versions.stdout.split()
    assert spark.startswith("3.5.") and int(arrow.split(".")[0]) >= 15
    assert numpy.startswith("2.") and where.startswith(str(ROOT))  # this checkout's library
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            *SCORING_TESTS,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.strip().splitlines()[-1]
