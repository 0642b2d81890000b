"""Shipping the library to executors as a wheel (infra/README.md), with a real spark-submit."""

from __future__ import annotations

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
