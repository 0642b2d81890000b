"""The Beam job (jobs/score_beam.py) on the local DirectRunner: the same rows, error codes and
scores as the Spark job on the same inputs, the model loaded once per worker process, the
output rules and exit codes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import torch
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.localfilesystem import LocalFileSystem

from deepiqa_core.batch import OUTPUT_COLUMNS, BatchConfig, BatchScorer, ImageRow
from deepiqa_core.local_scorer import load_scorer
from deepiqa_core.options import ScoringOptions
from deepiqa_core.weights import load_weights

from .conftest import encode, load_job, make_image, non_utf8_library

pytestmark = pytest.mark.spark  # the comparisons run the Spark job on the shared session

# Spark's Python workers run torch on spark.task.cpus (1) threads; so does the Beam job here
# (--torch-threads 1), so both sum in the same order and agree far below this.
TOL = 1e-6
BEAM = ["--torch-threads", "1", "--min-batch-rows", "1", "--max-batch-rows", "2"]
SCORE_NAMES = [name for name, _ in OUTPUT_COLUMNS]


class PrefixFileSystem(LocalFileSystem):
    """``testfs:///abs/path``: local files under a scheme deepiqa_core.sources does not read
    (a stand-in for gs://, which needs apache-beam[gcp] and a network)."""

    @classmethod
    def scheme(cls) -> str:
        return "testfs"

    def open(
        self,
        path: str,
        mime_type: str = "application/octet-stream",
        compression_type: str = CompressionTypes.AUTO,
    ):
        return super().open(path.removeprefix("testfs://"), mime_type, compression_type)


@pytest.fixture(autouse=True)
def torch_threads():
    """The in-process runner sets torch's threads for this process: put them back after."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("beam-inputs")
    photos = root / "photos"
    photos.mkdir()
    for i in range(4):
        (photos / f"good{i}.png").write_bytes(encode(make_image(64 + 16 * i, 96, seed=i)))
    (photos / "good4.jpg").write_bytes(encode(make_image(96, 64, seed=4), "JPEG", quality=80))
    (photos / "notes.png").write_bytes(b"this is text, not an image")
    (photos / "tiny.png").write_bytes(encode(make_image(16, 16)))
    os.symlink(root / "nowhere.png", photos / "gone.png")  # a broken link
    refs, dist = root / "ref", root / "dist"
    refs.mkdir(), dist.mkdir()
    for k in range(2):
        ref = make_image(64, 96, seed=10 + k)
        (refs / f"scene{k}.png").write_bytes(encode(ref))
        for q in (10, 40, 80):
            (dist / f"scene{k}__jpeg{q}.jpg").write_bytes(encode(ref, "JPEG", quality=q))
    (dist / "scene0__text.png").write_bytes(b"not a png")
    (dist / "orphan__blur.png").write_bytes(encode(make_image(64, 96, seed=30)))
    (refs / "wide.png").write_bytes(encode(make_image(64, 128, seed=31)))
    (dist / "wide__crop.png").write_bytes(encode(make_image(64, 96, seed=31)))
    (refs / "broken.png").write_bytes(b"not a reference")
    (dist / "broken__x.png").write_bytes(encode(make_image(64, 96, seed=32)))
    uris = [str(photos / n) for n in ("good0.png", "good1.png", "notes.png", "good0.png")]
    manifest = root / "manifest.parquet"
    pd.DataFrame(
        {
            "uri": [*uris, str(root / "missing.png")],
            "label": ["a", "b", "c", "d", "e"],
            "weight": [0.5, 1.5, 2.5, 3.5, 4.5],
            "score": [1, 2, 3, 4, 5],  # named like an output column: manifest_score
        }
    ).to_parquet(manifest)
    return {"root": root, "photos": photos, "refs": refs, "dist": dist, "manifest": manifest}


def spark_scores(spark, argv: list[str], out: Path) -> pd.DataFrame:
    argv = [*argv, "--partitions", "1", "--output", str(out)]  # one Python worker starts
    assert load_job("score").main(argv, spark=spark) in (0, 1)
    return pd.read_parquet(out / "scores").sort_values("id").reset_index(drop=True)


def beam_run(argv: list[str], out: Path, expect: int | None = None) -> tuple[pd.DataFrame, dict]:
    code = load_job("score_beam").main([*argv, "--output", str(out), *BEAM])
    if expect is not None:
        assert code == expect
    scores = pd.read_parquet(out / "scores").sort_values("id").reset_index(drop=True)
    return scores, json.loads((out / "summary.json").read_text())


def assert_same_rows(beam: pd.DataFrame, spark: pd.DataFrame) -> None:
    """One row per input in both, the same ids, references, error codes and (within TOL)
    scores."""
    assert beam["id"].tolist() == spark["id"].tolist()
    for name in ("uri", "ref_uri", "error_code", "num_patches", "width", "height", "bytes"):
        pd.testing.assert_series_equal(beam[name], spark[name], check_dtype=False, obj=name)
    scored = spark["score"].notna()
    assert (beam["score"].notna() == scored).all()
    assert (beam["score"][scored] - spark["score"][scored]).abs().max() < TOL


def test_folder_nr_equals_the_spark_job_with_one_model_load(spark, tree, weights_dir, tmp_path):
    args = [str(tree["photos"]), "--weights", str(weights_dir / "wadiqam-nr.safetensors")]
    beam, summary = beam_run([*args, "--max-error-rate", "1"], tmp_path / "beam", expect=0)
    reference = spark_scores(spark, args, tmp_path / "spark")
    assert len(beam) == 8
    assert_same_rows(beam, reference)
    codes = dict(zip(beam["uri"].map(lambda u: Path(u).name), beam["error_code"], strict=True))
    assert codes["notes.png"] == "decode_error"
    assert codes["tiny.png"] == "too_small"
    assert codes["gone.png"] == "missing"
    assert beam["score"].notna().sum() == 5
    assert summary["errors_by_code"] == {"decode_error": 1, "missing": 1, "too_small": 1}
    assert summary["rows_in"] == summary["rows_out"] == 8 and summary["scored"] == 5
    # batches of at most 2 rows: 8 rows are 4 or more batches, all on the one model
    assert summary["model_loads"] == 1 and summary["batches"] >= 4
    assert summary["model_loads_by_compute"] == {"cpu/fp32": 1}
    assert list(beam.columns) == SCORE_NAMES
    assert summary["score_percentiles"]["p50"] == pytest.approx(
        beam["score"].dropna().sort_values().iloc[2], abs=0
    )


def test_names_that_are_no_utf8_get_the_spark_jobs_rows(spark, weights_dir, tmp_path):
    """Once: the whole pipeline crashed (UnicodeEncodeError, exit 3, nothing written)."""
    folder = non_utf8_library(tmp_path / "load")
    args = [str(folder), "--weights", str(weights_dir / "wadiqam-nr.safetensors")]
    beam, _ = beam_run(args, tmp_path / "beam", expect=0)
    assert_same_rows(beam, spark_scores(spark, args, tmp_path / "spark"))
    odd = f"file://{quote(os.fsencode(folder))}/caf%E9.png"
    assert odd in set(beam["uri"]) and beam["score"].notna().all()


def test_fr_pairs_equal_the_spark_job(spark, tree, weights_dir, tmp_path):
    args = [
        str(tree["dist"]),
        "--ref",
        str(tree["refs"]),
        "--weights",
        str(weights_dir / "wadiqam-fr.safetensors"),
    ]
    beam, summary = beam_run([*args, "--max-error-rate", "0.5"], tmp_path / "beam", expect=0)
    reference = spark_scores(spark, args, tmp_path / "spark")
    assert len(beam) == 10
    assert_same_rows(beam, reference)
    codes = dict(zip(beam["uri"].map(lambda u: Path(u).name), beam["error_code"], strict=True))
    assert codes["orphan__blur.png"] == "unpaired"
    assert codes["wide__crop.png"] == "size_mismatch"
    assert codes["broken__x.png"] == "ref_decode_error"
    assert codes["scene0__text.png"] == "decode_error"
    assert beam["score"].notna().sum() == 6
    assert summary["model_loads"] == 1 and summary["failed"] == 4


def library_scores(weights: Path, rows: list[ImageRow]) -> list[float | None]:
    """What ``deepiqa score`` computes for these rows (BatchScorer in this process)."""
    torch.set_num_threads(1)
    scorer, meta, sha = load_scorer(weights, ScoringOptions(device="cpu"))
    results = BatchScorer(scorer, meta.variant, sha, BatchConfig()).score_rows(rows)
    return [r.score for r in results]


def test_manifest_keeps_its_columns_and_the_spark_jobs_id_rule(tree, weights_dir, tmp_path):
    weights = weights_dir / "wadiqam-nr.safetensors"
    args = [str(tree["manifest"]), "--weights", str(weights), "--max-error-rate", "1"]
    beam, summary = beam_run(args, tmp_path / "beam", expect=0)
    # the Spark job's layout: output columns, then the manifest's own, a clashing one renamed
    assert list(beam.columns) == [*SCORE_NAMES, "label", "weight", "manifest_score"]
    good0, good1 = (str(tree["photos"] / n) for n in ("good0.png", "good1.png"))
    by_label = beam.set_index("label").sort_index()
    assert by_label["id"].to_dict() == {
        "a": good0,
        "b": good1,
        "c": str(tree["photos"] / "notes.png"),
        "d": good0 + "#2",  # a repeated uri without an id column
        "e": str(tree["root"] / "missing.png"),
    }
    assert by_label["weight"].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert by_label["manifest_score"].tolist() == [1, 2, 3, 4, 5]
    assert by_label["error_code"].tolist() == [None, None, "decode_error", None, "missing"]
    expected = library_scores(weights, [ImageRow(id="0", uri=good0), ImageRow(id="1", uri=good1)])
    assert by_label.loc[["a", "b", "d"], "score"].tolist() == pytest.approx(
        [expected[0], expected[1], expected[0]], abs=TOL
    )
    assert summary["rows_in"] == summary["rows_out"] == 5 and summary["failed"] == 2
    picked, _ = beam_run([*args, "--pass-columns", "label"], tmp_path / "picked")
    assert list(picked.columns) == [*SCORE_NAMES, "label"]


def test_table_of_image_bytes_scores_like_the_library(weights_dir, tmp_path):
    blobs = [encode(make_image(64, 64, seed=i)) for i in range(3)] + [b"garbage"]
    table = tmp_path / "bytes.parquet"
    pd.DataFrame({"id": list("abcd"), "content": blobs}).to_parquet(table)
    weights = weights_dir / "wadiqam-nr.safetensors"
    argv = [str(table), "--bytes-column", "content", "--weights", str(weights)]
    beam, _ = beam_run([*argv, "--max-error-rate", "0.5"], tmp_path / "out", expect=0)
    assert beam["error_code"].tolist() == [None, None, None, "decode_error"]
    rows = [ImageRow(id=k, image=b) for k, b in zip("abc", blobs, strict=False)]
    assert beam["score"][:3].tolist() == pytest.approx(library_scores(weights, rows), abs=TOL)
    assert beam["uri"].isna().all() and beam["ref_uri"].isna().all()


@pytest.mark.slow  # ~11 s: two SDK worker processes start and import torch
def test_two_worker_processes_load_the_model_once_each(tree, weights_dir, tmp_path):
    args = [str(tree["photos"]), "--weights", str(weights_dir / "wadiqam-nr.safetensors")]
    single, _ = beam_run([*args, "--max-error-rate", "1"], tmp_path / "one")
    multi, summary = beam_run(
        [
            *args,
            "--max-error-rate",
            "1",
            "--direct_num_workers",
            "2",
            "--direct_running_mode",
            "multi_processing",
        ],
        tmp_path / "two",
    )
    assert_same_rows(multi, single)
    assert 1 <= summary["model_loads"] <= 2  # one per worker process that got rows
    assert summary["batches"] >= 4 > summary["model_loads"]


def test_uris_of_other_schemes_are_read_through_beam_filesystems(tree, weights_dir, tmp_path):
    assert PrefixFileSystem.scheme() == "testfs"  # registered with Beam by being defined
    names = ["good0.png", "good1.png", "notes.png", "absent.png"]
    manifest = tmp_path / "remote.csv"
    uris = [f"testfs://{tree['photos'] / n}" for n in names] + ["hdfs://nn/x.png"]
    pd.DataFrame({"uri": uris}).to_csv(manifest, index=False)
    weights = str(weights_dir / "wadiqam-nr.safetensors")
    remote, _ = beam_run([str(manifest), "--weights", weights], tmp_path / "remote", expect=1)
    local, _ = beam_run([str(tree["photos"]), "--weights", weights], tmp_path / "local")
    codes = dict(zip(remote["uri"], remote["error_code"], strict=True))
    assert codes["hdfs://nn/x.png"] == "unsupported_uri"  # no HDFS file system installed
    assert codes[uris[2]] == "decode_error" and codes[uris[3]] == "missing"
    by_name = local.set_index(local["uri"].map(lambda u: Path(u).name))
    for uri in uris[:2]:
        row = remote.set_index("uri").loc[uri]
        expected = by_name.loc[Path(uri).name]
        assert row["score"] == pytest.approx(expected["score"], abs=TOL)
        assert row["bytes"] == expected["bytes"]


def _siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.glob(f".{folder.name}.*"))


def test_usage_errors_exit_2_and_write_nothing(tree, weights_dir, tmp_path, capsys):
    main = load_job("score_beam").main
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    photos = str(tree["photos"])
    out = tmp_path / "out"
    cases = {
        "overlaps": [photos, "--weights", nr, "--output", str(tree["photos"] / "scores")],
        "--ref does not apply": [photos, "--weights", nr, "--ref", photos, "--output", str(out)],
        "--runer": [photos, "--weights", nr, "--output", str(out), "--runer", "DirectRunner"],
        "does not exist": [str(tmp_path / "nope"), "--weights", nr, "--output", str(out)],
        "required": [photos, "--weights", nr],
        "gs://": ["gs://bucket/photos/", "--weights", nr, "--output", str(out)],
        "gs:// --output": [
            photos,
            "--weights",
            nr,
            "--output",
            str(out),
            "--runner",
            "DataflowRunner",
        ],
    }
    for message, argv in cases.items():
        assert main(argv) == 2, message
        assert message.split()[0] in capsys.readouterr().err, message
        assert not out.exists() and not _siblings(out), message
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "precious.txt").write_text("keep me")
    argv = [photos, "--weights", nr, "--output", str(theirs)]
    assert main(argv) == 2 and "pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 2 and "not a deepiqa output" in capsys.readouterr().err
    assert (theirs / "precious.txt").read_text() == "keep me" and not _siblings(theirs)
    (theirs / "metrics.jsonl").write_text("{}")  # a name other tools write: no proof
    assert main([*argv, "--overwrite"]) == 2 and "not a deepiqa output" in capsys.readouterr().err
    assert (theirs / "precious.txt").read_text() == "keep me" and not _siblings(theirs)
    with pytest.raises(SystemExit) as parse_error:
        main([photos, "--max-error-rate", "2", "--output", str(out)])
    assert parse_error.value.code == 2


def test_max_error_rate_exit_codes_overwrite_and_unusable_weights(tree, weights_dir, tmp_path):
    main = load_job("score_beam").main
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    out = tmp_path / "out"
    argv = [str(tree["photos"]), "--weights", nr, "--output", str(out), *BEAM]
    assert main(argv) == 1  # 3 of 8 failed, over the default --max-error-rate 0
    assert (out / "_COMPLETE").exists() and (out / "_DEEPIQA_OUTPUT").exists()  # published
    first = json.loads((out / "summary.json").read_text())["run_id"]
    assert main([*argv, "--overwrite", "--max-error-rate", "0.375"]) == 0  # 3/8 is not over
    assert json.loads((out / "summary.json").read_text())["run_id"] != first
    assert main([*argv, "--overwrite", "--max-error-rate", "0.374"]) == 1
    assert not _siblings(out) and len(pd.read_parquet(out / "scores")) == 8
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    other = tmp_path / "other"
    assert main([str(tree["photos"]), "--weights", str(bad), "--output", str(other)]) == 3
    assert not other.exists() and not _siblings(other)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--weights", nr, "--output", str(other)]) == 3  # nothing to score
    assert not other.exists() and not _siblings(other)


def test_weights_bytes_staged_for_workers_are_checked(weights_dir, tmp_path):
    """A worker whose staged weights differ from what the launcher checked refuses them."""
    from deepiqa_core.beam.handler import ScoreModelHandler

    data = (weights_dir / "wadiqam-nr.safetensors").read_bytes()
    staged = tmp_path / "w.safetensors"
    staged.write_bytes(data)
    handler = ScoreModelHandler(str(staged), "0" * 64, ScoringOptions(device="cpu"))
    with pytest.raises(Exception, match="changed after the run started"):
        handler.load_model()
    _, meta = load_weights(data)
    from deepiqa_core.weights import weights_sha256

    loaded = ScoreModelHandler(str(staged), weights_sha256(data), ScoringOptions()).load_model()
    assert loaded.scorer.model_name == meta.variant


@pytest.mark.slow  # ~20 s: every file operation is an HTTP request to moto's S3 server
def test_s3_output_through_beam_filesystems_is_published_by_pointer(
    s3_server, tree, weights_dir, tmp_path, monkeypatch
):
    import boto3
    from moto import settings

    # moto's signature check rejects list prefixes that end in "/" (real S3 takes them, and
    # Beam's S3 file system lists folders that way); this test is about publishing, not IAM
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))

    main = load_job("score_beam").main
    s3 = boto3.client("s3")
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    target = "s3://media/beam/nightly"
    argv = [str(tree["photos"]), "--weights", nr, "--output", target, "--max-error-rate", "1"]
    assert main(argv) == 0
    assert main(argv) == 2  # published: replacing it needs --overwrite
    assert main([*argv, "--overwrite"]) == 0

    def keys(prefix: str) -> list[str]:
        listing = s3.list_objects_v2(Bucket="media", Prefix=prefix).get("Contents", [])
        return sorted(o["Key"][len(prefix) :] for o in listing)

    def read(key: str) -> bytes:
        return s3.get_object(Bucket="media", Key=f"beam/nightly/{key}")["Body"].read()

    pointer = json.loads(read("_LATEST"))
    run = pointer["run"]
    assert run.startswith("runs/")
    # only the latest run is kept, without its scratch (_items, _weights)
    assert keys("beam/nightly/") == [
        "_DEEPIQA_OUTPUT",
        "_LATEST",
        f"{run}/_COMPLETE",
        f"{run}/_DEEPIQA_OUTPUT",
        f"{run}/scores/part-00000-of-00001.parquet",
        f"{run}/summary.json",
    ]
    scores = pd.read_parquet(io.BytesIO(read(f"{run}/scores/part-00000-of-00001.parquet")))
    assert len(scores) == 8 and scores["score"].notna().sum() == 5
    summary = json.loads(read(f"{run}/summary.json"))
    assert summary["publish"] == "pointer" and summary["output"] == f"{target}/{run}"
    s3.put_object(Bucket="media", Key="beam/theirs/data.csv", Body=b"a,b\n")
    theirs = [str(tree["photos"]), "--weights", nr, "--output", "s3://media/beam/theirs"]
    assert main([*theirs, "--overwrite"]) == 2
    assert keys("beam/theirs/") == ["data.csv"]


RECIPES = Path(__file__).resolve().parents[1] / "infra" / "beam"
CLOUD = {"PROJECT": "p", "REGION": "europe-west4", "BUCKET": "gs://b", "IMAGE": "img:1"}


def recipe(name: str, *args: str, env: dict[str, str] | None = None, print_args: bool = False):
    extra = {"PYTHON": sys.executable, **(env or {})}
    if print_args:
        extra["DEEPIQA_PRINT_ARGS"] = "1"
    return subprocess.run(
        ["bash", str(RECIPES / name), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **extra},
        timeout=300,
    )


@pytest.mark.parametrize(
    "name, mode, env",
    [
        ("local.sh", "direct", {}),
        ("local.sh", "workers", {}),
        ("local.sh", "prism", {}),
        ("dataflow.sh", "cpu", CLOUD),
        ("dataflow.sh", "gpu", CLOUD),
        ("flink.sh", "runner", {"FLINK_MASTER": "jm:8081"}),
        ("flink.sh", "portable", {"JOB_ENDPOINT": "localhost:8099"}),
    ],
)
def test_runner_recipes_pass_arguments_the_job_and_beam_accept(name, mode, env):
    from deepiqa_core.beam.pipeline import pipeline_options
    from deepiqa_core.runs.beam_spec import ScoreBeamSpec

    output = [] if name == "dataflow.sh" else ["s3://media/beam/out"]
    done = recipe(name, mode, "manifest.parquet", *output, env=env, print_args=True)
    assert done.returncode == 0, done.stderr
    job = load_job("score_beam")
    args, beam_args = job.build_parser().parse_known_args(done.stdout.splitlines())
    spec = ScoreBeamSpec.from_args(args, beam_args)
    options = pipeline_options(spec.pipeline_args).get_all_options()
    assert spec.inputs.source == "manifest.parquet" and options["runner"]
    if name == "dataflow.sh":
        assert spec.output.startswith("gs://b/deepiqa/") and options["project"] == "p"
    if mode == "gpu":
        assert spec.scoring.device == "cuda" and options["sdk_container_image"] == "img:1"
        assert "install-nvidia-driver" in options["dataflow_service_options"][0]
    assert recipe(name, "nonsense", "x", "y", env=env).returncode == 2


@pytest.mark.parametrize("mode", ["direct", pytest.param("workers", marks=pytest.mark.slow)])
def test_local_recipes_score_a_folder(mode, tree, weights_dir, tmp_path):
    out = tmp_path / "out"
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    done = recipe("local.sh", mode, str(tree["photos"]), str(out), "--weights", nr)
    assert done.returncode == 1, done.stderr  # 3 of 8 images fail: over --max-error-rate 0
    assert "scored 5, failed 3" in done.stdout
    assert len(pd.read_parquet(out / "scores")) == 8 and (out / "_COMPLETE").exists()


def test_summary_keeps_beam_options_but_not_their_secrets():
    from deepiqa_core.beam.pipeline import redacted

    args = ("--runner", "DirectRunner", "--s3_secret_access_key", "abc", "--s3_session_token=t")
    assert redacted((*args, "--project", "p")) == [
        "--runner",
        "DirectRunner",
        "--s3_secret_access_key",
        "***",
        "--s3_session_token=***",
        "--project",
        "p",
    ]
