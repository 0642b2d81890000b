"""The real spark-submit: the embedded default (the README's main command) and a retried task."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from deepiqa_core.defaults import SAMPLES
from deepiqa_core.errors import ROW_ERROR_CODES

from .conftest import JOBS, encode, make_image, spark_submit

pytestmark = pytest.mark.spark
ROOT = JOBS.parent


def submit_score(master: str, *args: str, cwd: Path):
    return spark_submit(master, str(JOBS / "score.py"), *args, cwd=cwd)


@pytest.mark.slow
def test_embedded_default_scores_the_bundled_samples(tmp_path):
    result = submit_score("local[2]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    nr = pd.read_parquet(tmp_path / "output/score-default/nr/scores")
    fr = pd.read_parquet(tmp_path / "output/score-default/fr/scores")
    assert len(nr) == len(list((SAMPLES / "nr").iterdir())) == 4
    assert len(fr) == 6 and fr["error_code"].isna().all() and nr["error_code"].isna().all()
    assert set(nr["model"]) == {"wadiqam-nr"} and set(fr["model"]) == {"wadiqam-fr"}
    assert nr["score"].between(0, 100).all() and fr["score"].between(0, 100).all()
    assert fr["score"].std() > 1.0  # distinct distortions get distinct scores
    assert "deepiqa score: 4 images with wadiqam-nr" in result.stdout
    assert "deepiqa score: 6 images with wadiqam-fr" in result.stdout
    assert "images/s" in result.stdout and "score p5/p25/p50/p75/p95" in result.stdout


@pytest.mark.slow
def test_a_task_that_fails_once_is_retried_without_duplicates(tmp_path, weights_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(24):
        (photos / f"{i:02d}.png").write_bytes(encode(make_image(64, 64, seed=i)))
    marker = tmp_path / "failed-once"
    out = tmp_path / "out"
    result = submit_score(
        "local[2,2]",  # two cores, a task may fail twice (local mode's default is once)
        str(photos),
        "--weights",
        str(weights_dir / "diqam-nr.safetensors"),
        "--output",
        str(out),
        "--partitions",
        "2",
        "--arrow-batch-rows",
        "4",
        "--fail-once-marker",
        str(marker),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert marker.exists()  # the failure really happened
    assert "injected failure" in result.stderr
    df = pd.read_parquet(out / "scores")
    assert len(df) == 24 and df["id"].is_unique and df["error_code"].isna().all()


HELP = """
import importlib.util, sys
for path in sys.argv[1:]:
    spec = importlib.util.spec_from_file_location("job", path)
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    print("=== " + path.rsplit("/", 1)[-1])
    print(job.build_parser().format_help())
"""
JOB_WORDS = {
    "score.py": ["s3://", "--ref", "--pair-regex", "--patches", "--max-error-rate", "_COMPLETE"],
    "train.py": ["--resume", "--num-processes", "TorchDistributor", "Petastorm", "--min-srocc"],
    "synthesize.py": ["--distortions", "jpeg2000", "color_block"],
    "evaluate.py": ["--logistic-params", "--dataset NAME=ROOT", "--max-error-rate"],
}


def test_every_job_help_teaches_its_options_codes_and_examples():
    jobs = [str(JOBS / name) for name in JOB_WORDS]
    done = subprocess.run(
        [sys.executable, "-c", HELP, *jobs], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    texts = dict(part.split("\n", 1) for part in done.stdout.split("=== ")[1:])
    for name, words in JOB_WORDS.items():
        assert all(word in texts[name] for word in [*words, "exit codes:"]), name
    assert all(code in texts["score.py"] for code in ROW_ERROR_CODES)
    assert "examples" in texts["score.py"] and "error codes" in texts["score.py"]


@pytest.mark.slow  # real spark-submit runs (the marker's rule)
def test_the_jobs_session_defaults_yield_to_spark_submit_conf(tmp_path):
    """The driver's retention settings are tunable: once the job's own values overrode a
    user's --conf (the builder's settings win over spark-submit's)."""
    probe = str(Path(__file__).with_name("session_probe.py"))
    given = ["--conf", "spark.sql.ui.retainedExecutions=7", probe]
    done = spark_submit("local[1]", *given, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    settings = dict(ln.split()[1:] for ln in done.stdout.splitlines() if ln.startswith("SETTING"))
    assert settings == {"spark.sql.ui.retainedExecutions": "7", "spark.ui.retainedTasks": "10000"}
