"""Outputs through the cluster's file system layer (file:, s3:// on moto, refused schemes),
resumable runs, and rows an audit can use."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from deepiqa_core.options import InputSpec
from deepiqa_core.runs.score_spec import Execution, ScoreJobSpec
from deepiqa_core.spark.score_job import _distribute, run_score_job

from .conftest import JOBS, encode, load_job, make_image

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(7):
        (folder / f"p{i}.png").write_bytes(encode(make_image(40, 72, seed=i)))
    (folder / "bad.png").write_bytes(b"not an image")
    return folder


@pytest.fixture(scope="module")
def job():
    return load_job("score").main


def scores(folder: Path) -> pd.DataFrame:
    return pd.read_parquet(folder / "scores").sort_values("id").reset_index(drop=True)


def test_file_uris_go_through_the_hadoop_file_system(job, spark, photos, weights_dir, tmp_path):
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    out = tmp_path / "out"
    args = [str(photos), "--weights", nr, "--max-error-rate", "1", "--rows-per-file", "3"]
    assert job([*args, "--output", out.as_uri(), "--csv"], spark) == 0
    result = scores(out)
    assert len(result) == 8 and len(list((out / "scores").glob("*.parquet"))) == 3  # 8 rows / 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["output"] == "file:" + str(out) and summary["publish"] == "rename"
    assert summary["versions"]["spark"] == spark.version and summary["percentile_rank_error"]
    assert summary["arguments"]["inputs"]["source"] == str(photos)
    assert summary["started_at"] <= summary["finished_at"]
    assert (out / "_COMPLETE").exists() and (out / "_DEEPIQA_OUTPUT").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(("_items", "_chunks", "_listing"))]
    good = result[result["error_code"].isna()]
    assert good["width"].eq(72).all() and good["height"].eq(40).all() and good["bytes"].gt(0).all()
    plain = tmp_path / "plain"
    assert job([*args, "--output", str(plain)], spark) == 0
    pd.testing.assert_frame_equal(scores(plain), result)


def test_schemes_the_cluster_cannot_write_are_refused_before_scoring(
    job, spark, photos, weights_dir, tmp_path, capsys
):
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    for target in ("foo://bucket/x", "gs://bucket/x", "hdfs://namenode:8020/x"):
        assert job([str(photos), "--weights", nr, "--output", target], spark) in (2, 3)
    err = capsys.readouterr().err
    assert "cannot write foo://" in err and "cannot write gs://" in err
    assert not list(Path.cwd().glob("foo:*")) and not list(Path.cwd().glob("gs:*"))


def read_s3_parquet(s3, bucket: str, prefix: str) -> pd.DataFrame:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    parts = [
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())).to_pandas()
        for k in keys
        if k.endswith(".parquet")
    ]
    return pd.concat(parts).sort_values("id").reset_index(drop=True)


@pytest.mark.slow
def test_s3_output_is_exported_and_published_by_pointer(
    job, spark, photos, weights_dir, tmp_path, s3_listing_prefixes
):
    import boto3

    s3 = boto3.client("s3")
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    args = [str(photos), "--weights", nr, "--max-error-rate", "1"]
    local = tmp_path / "local"
    assert job([*args, "--output", str(local)], spark) == 0
    assert job([*args, "--output", "s3://media/audits/x", "--csv"], spark) == 0
    pointer = json.loads(s3.get_object(Bucket="media", Key="audits/x/_LATEST")["Body"].read())
    first = pointer["run"]
    remote = read_s3_parquet(s3, "media", f"audits/x/{first}/scores/")
    pd.testing.assert_frame_equal(remote, scores(local), check_dtype=True)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="media", Prefix="audits/x/")["Contents"]}
    assert f"audits/x/{first}/_COMPLETE" in keys and f"audits/x/{first}/summary.json" in keys
    assert any(k.startswith(f"audits/x/{first}/scores_csv/") for k in keys)
    assert "audits/x/_DEEPIQA_OUTPUT" in keys
    assert not Path("s3:").exists() and not (Path.cwd() / "s3:").exists()  # never a local folder
    assert job([*args, "--output", "s3://media/audits/x"], spark) == 2  # exists
    assert job([*args, "--output", "s3://media/audits/x", "--overwrite"], spark) == 0
    second = json.loads(s3.get_object(Bucket="media", Key="audits/x/_LATEST")["Body"].read())["run"]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="media", Prefix="audits/x/")["Contents"]}
    assert second != first and not any(k.startswith(f"audits/x/{first}/") for k in keys)
    s3.put_object(Bucket="media", Key="someone/else.txt", Body=b"theirs")
    assert job([*args, "--output", "s3://media/someone", "--overwrite"], spark) == 2


def test_manifest_columns_pass_through_and_ids_are_unique(
    job, spark, photos, weights_dir, tmp_path
):
    manifest = tmp_path / "m.parquet"
    uris = [str(photos / "p0.png"), str(photos / "p1.png"), str(photos / "p0.png")]
    frame = pd.DataFrame({"uri": uris, "score": [1.0, 2.0, 3.0], "camera": ["a", "b", "c"]})
    frame.to_parquet(manifest)
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    out = tmp_path / "out"
    assert job([str(manifest), "--weights", nr, "--output", str(out)], spark) == 0
    result = pd.read_parquet(out / "scores").sort_values("manifest_score")
    assert result["id"].tolist() == [uris[0], uris[1], uris[0] + "#2"]  # repeats stay apart
    assert result["camera"].tolist() == ["a", "b", "c"]  # the manifest's own columns
    assert result["score"].notna().all()  # the model's score; the manifest's is manifest_score
    only = tmp_path / "only"
    args = [str(manifest), "--weights", nr, "--output", str(only), "--pass-columns", "camera"]
    assert job(args, spark) == 0
    assert "manifest_score" not in pd.read_parquet(only / "scores").columns


def test_a_table_of_image_bytes_is_scored_where_it_lies(spark):
    items = spark.createDataFrame([("a", b"x")], "id string, image binary")
    spec = ScoreJobSpec(InputSpec("t.parquet"), Path("w"), "o")
    assert _distribute(items, 1, spec, spec.scoring, 4, full_reference=False) is items
    keyed = spark.createDataFrame([("a", "u")], "id string, uri string")
    assert _distribute(keyed, 1, spec, spec.scoring, 4, full_reference=False) is not keyed


def test_streamed_listing_and_chunks_give_the_same_rows_as_one_pass(
    spark, photos, weights_dir, tmp_path
):
    weights = weights_dir / "wadiqam-nr.safetensors"
    runs = []
    for rows in (3, 1000):
        out = tmp_path / f"chunks-{rows}"
        # rows=3: the listing streamed in batches of 3 paths and scored in 3 committed chunks
        execution = Execution(chunk_rows=rows, listing_batch=rows)
        spec = ScoreJobSpec(InputSpec(str(photos)), weights, out, execution=execution)
        summary = run_score_job(spark, spec)
        runs.append(scores(out))
        assert summary.engine_facts["chunks"] == (3 if rows == 3 else 1)
    pd.testing.assert_frame_equal(runs[0], runs[1])


@pytest.mark.slow
def test_a_killed_run_resumes_and_gives_exactly_the_uninterrupted_rows(
    photos, weights_dir, tmp_path
):
    """spark-submit killed (SIGKILL, the whole process group) after its first committed chunk;
    the same command with --resume skips that chunk and ends with the same rows."""
    nr = str(weights_dir / "wadiqam-nr.safetensors")

    def command(out: Path, *extra: str) -> list[str]:
        exe = Path(sys.executable).with_name("spark-submit")
        args = [str(photos), "--weights", nr, "--output", str(out), "--chunk-rows", "2"]
        return [
            str(exe),
            "--master",
            "local[1]",
            str(JOBS / "score.py"),
            *args,
            "--max-error-rate",
            "1",
            *extra,
        ]

    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    whole = tmp_path / "whole"
    assert subprocess.run(command(whole), env=env, capture_output=True, timeout=600).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        command(killed),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob(".killed.staging-*/_chunks/chunk-*/_DONE")):
        assert proc.poll() is None and time.monotonic() < deadline, "no chunk was committed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not killed.exists()
    resumed = subprocess.run(
        command(killed, "--resume"), env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["chunks"] == 4 and summary["chunks_reused"] >= 1
    columns = ["id", "uri", "score", "num_patches", "error_code", "width", "height", "bytes"]
    pd.testing.assert_frame_equal(scores(killed)[columns], scores(whole)[columns])
