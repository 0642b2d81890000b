"""Shipping the library to executors as a wheel (infra/README.md), with a real spark-submit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import JOBS, encode, make_image, spark_submit

pytestmark = [pytest.mark.spark, pytest.mark.slow]
ROOT = JOBS.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (found,) = dist.glob("deepiqa-*-py3-none-any.whl")
    shipped = found.with_suffix(".zip")  # what infra/build_wheel.sh makes for --py-files
    shipped.write_bytes(found.read_bytes())
    return shipped


def test_wheel_holds_the_library_weights_and_samples(wheel):
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "deepiqa_core/scoring.py" in names
    assert "deepiqa_core/weights/default/wadiqam-fr.safetensors" in names
    assert any(n.startswith("deepiqa_core/samples/nr/") for n in names)
    assert {"deepiqa_core/audit/report/report.css", "deepiqa_core/audit/report/report.js"} <= set(
        names
    )


def test_executors_import_the_shipped_wheel_and_the_job_runs_with_it(wheel, tmp_path, weights_dir):
    probe = spark_submit(
        "local[2]", "--py-files", str(wheel), str(ROOT / "tests" / "spark_probe.py"), cwd=tmp_path
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    line = next(ln for ln in probe.stdout.splitlines() if ln.startswith("EXECUTOR_LIBRARY"))
    assert wheel.name in line  # executors imported deepiqa_core from the wheel, not the checkout
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"{i}.png").write_bytes(encode(make_image(64, 64, seed=i)))
    out = tmp_path / "out"
    job = spark_submit(
        "local[2]",
        "--py-files",
        str(wheel),
        str(JOBS / "score.py"),
        str(photos),
        "--weights",
        str(weights_dir / "wadiqam-nr.safetensors"),
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert job.returncode == 0, job.stderr[-3000:]
    assert pd.read_parquet(out / "scores")["error_code"].isna().all()


def test_a_packed_environment_on_archives_runs_the_job_on_executors(wheel, tmp_path):
    """infra/README.md's packed-environment route, for real: the Spark 3.5 environment packed
    with venv-pack, shipped with --archives, and used by executors started as separate processes
    (local-cluster: each executor unpacks the archive in its own work folder, as on YARN or
    Kubernetes); the library comes from the wheel on --py-files, its default weights included."""
    made = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-spark35.sh")], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr[-2000:]
    env_dir = Path(made.stdout.strip().splitlines()[-1])
    # local-cluster's executors work (and unpack archives) in $SPARK_HOME/work: inside this
    # cached environment; clear it before packing and after the run, or the cache grows
    work = next(env_dir.glob("lib/python3*/site-packages/pyspark")) / "work"
    shutil.rmtree(work, ignore_errors=True)
    # a gzipped tar (Spark unpacks .tar with a Java unpacker that refuses the venv's symlink to
    # its base Python); level 0: packing and unpacking are plain copies
    archive = tmp_path / "env.tar.gz"
    pack = Path(sys.executable).with_name("venv-pack")
    packed = subprocess.run(
        [str(pack), "-p", str(env_dir), "-o", str(archive), "--compress-level", "0", "-q"],
        capture_output=True,
        text=True,
    )
    assert packed.returncode == 0, packed.stderr[-2000:]
    try:
        run_packed(env_dir, archive, wheel, tmp_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_packed(env_dir: Path, archive: Path, wheel: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        (photos / f"{i}.png").write_bytes(encode(make_image(64, 64, seed=i)))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYSPARK_PYTHON")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    job = subprocess.run(
        [
            str(env_dir / "bin" / "spark-submit"),
            *["--master", "local-cluster[1,2,2048]", "--conf", "spark.ui.enabled=false"],
            *["--archives", f"{archive}#env", "--conf", "spark.pyspark.python=./env/bin/python"],
            *["--conf", f"spark.pyspark.driver.python={env_dir / 'bin' / 'python'}"],
            *["--py-files", str(wheel), str(JOBS / "score.py"), str(photos)],
            *["--output", str(tmp_path / "out")],
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    scores = pd.read_parquet(tmp_path / "out" / "scores")
    assert len(scores) == 3 and scores["error_code"].isna().all()
    assert set(scores["model"]) == {"wadiqam-nr"}  # the shipped weights, read from the zip
