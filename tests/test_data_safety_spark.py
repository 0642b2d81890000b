"""The data-safety and error contracts of the Spark jobs: in-process on the shared session, and
end to end through the real spark-submit."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from deepiqa_core import WeightsMeta, save_weights
from deepiqa_core.defaults import default_weights
from deepiqa_core.runs.leases import OWNER
from deepiqa_core.runs.publish import COMPLETE_MARKER, recover
from deepiqa_core.runs.storage import join
from deepiqa_core.sources import reset_s3_client
from deepiqa_core.spark.publish import publish
from deepiqa_core.spark.storage import HadoopStorage

from .conftest import (
    JOBS,
    encode,
    load_job,
    make_image,
    non_utf8_library,
    spark_submit,
    trained_like,
)

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def job():
    return load_job("score").main


@pytest.fixture
def library(tmp_path) -> Path:
    """A user's folder: images and a file that is not an image."""
    folder = tmp_path / "library"
    (folder / "sub").mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(encode(make_image(64, 64, seed=i)))
    (folder / "sub" / "notes.txt").write_text("keep me")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def nan_weights(tmp_path) -> Path:
    path = tmp_path / "nan.safetensors"
    meta = WeightsMeta(variant="wadiqam-nr", score_range=[0.0, 100.0])
    save_weights(trained_like("wadiqam-nr"), path, meta)
    tensors = load_file(str(path))
    tensors["features.0.weight"][0, 0, 0, 0] = float("nan")
    save_file(tensors, str(path), metadata={"deepiqa": meta.to_json()})
    return path


def test_overwrite_never_deletes_inputs_or_foreign_folders(
    job, spark, library, weights_dir, tmp_path
):
    before = snapshot(library)
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    assert job([str(library), "--weights", nr, "--output", str(library), "--overwrite"], spark) == 2
    inside = str(library / "out")
    assert job([str(library), "--weights", nr, "--output", inside, "--overwrite"], spark) == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("mine")
    assert job([str(library), "--weights", nr, "--output", str(foreign), "--overwrite"], spark) == 2
    assert snapshot(library) == before and (foreign / "data.csv").read_text() == "mine"
    for name in ("checkpoints", "metrics.jsonl"):  # other tools' names are no proof
        lookalike = tmp_path / f"exp-{name}"
        (lookalike / "checkpoints").mkdir(parents=True)
        (lookalike / "checkpoints" / "epoch=99.ckpt").write_text("w")
        (lookalike / "metrics.jsonl").write_text("{}")
        (lookalike / "notes.txt").write_text("n")
        args = [str(library), "--weights", nr, "--output", str(lookalike), "--overwrite"]
        assert job(args, spark) == 2
        assert (lookalike / "notes.txt").read_text() == "n"
        assert (lookalike / "checkpoints" / "epoch=99.ckpt").read_text() == "w"
    out = tmp_path / "out"
    assert job([str(library), "--weights", nr, "--output", str(out)], spark) == 0
    assert job([str(library), "--weights", nr, "--output", str(out)], spark) == 2  # exists
    assert job([str(library), "--weights", nr, "--output", str(out), "--overwrite"], spark) == 0
    assert (out / "_DEEPIQA_OUTPUT").exists() and snapshot(library) == before


def test_unusable_weights_and_inputs_get_their_exit_codes(
    job, spark, library, weights_dir, nan_weights, tmp_path, capsys
):
    out = str(tmp_path / "out")
    assert job([str(library), "--weights", str(nan_weights), "--output", out], spark) == 3
    assert "NaN or infinite" in capsys.readouterr().err and not Path(out).exists()
    assert job([str(library), "--weights", str(tmp_path), "--output", out], spark) == 2
    fr = str(weights_dir / "wadiqam-fr.safetensors")
    (tmp_path / "no-refs").mkdir()
    for ref in (tmp_path / "missing-refs", tmp_path / "no-refs"):
        assert job([str(library), "--weights", fr, "--ref", str(ref), "--output", out], spark) == 2
    corrupt = tmp_path / "m.parquet"
    corrupt.write_bytes(b"PAR1 garbage PAR1")
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    assert job([str(corrupt), "--weights", nr, "--output", out], spark) == 3
    assert job([str(tmp_path / "gone.parquet"), "--weights", nr, "--output", out], spark) == 2
    for flag in ("--rows-per-partition", "--patch-budget", "--stride"):
        with pytest.raises(SystemExit) as exc:
            job([str(library), "--weights", nr, "--output", out, flag, "0"], spark)
        assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "cannot read the manifest" in err and "Traceback" not in err
    assert "footer" in err  # the cause, not "An error occurred while calling o1050..."
    assert not Path(out).exists()
    assert not list(tmp_path.glob(".out.*"))  # no empty staging folder left by any of them


def test_s3_listing_failures_are_exit_3(job, spark, weights_dir, tmp_path, s3_server, monkeypatch):
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    out = str(tmp_path / "out")
    assert job(["s3://no-such-bucket/photos", "--weights", nr, "--output", out], spark) == 3
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    reset_s3_client()
    try:
        assert job(["s3://media/photos", "--weights", nr, "--output", out], spark) == 3
    finally:
        monkeypatch.undo()
        reset_s3_client()


def test_rows_say_what_was_wrong_and_scores_say_if_in_range(job, spark, tmp_path, weights_dir):
    manifest = tmp_path / "m.parquet"
    good = tmp_path / "good.png"
    good.write_bytes(encode(make_image(64, 64)))
    uris = [str(good), None, "", "gs://bucket/x.jpg", "file://otherhost/x.png"]
    pd.DataFrame({"id": list("abcde"), "uri": uris}).to_parquet(manifest)
    out = tmp_path / "out"
    weights = tmp_path / "ranged.safetensors"  # declares 0..10; its scores sit near 50 +- 40
    save_weights(
        trained_like("wadiqam-nr"), weights, WeightsMeta("wadiqam-nr", score_range=[0.0, 10.0])
    )
    args = [str(manifest), "--weights", str(weights), "--output", str(out), "--max-error-rate", "1"]
    assert job(args, spark) == 0
    rows = pd.read_parquet(out / "scores").sort_values("id")
    assert rows["error_code"].tolist() == [
        None,
        "bad_input",
        "bad_input",
        "unsupported_uri",
        "unsupported_uri",
    ]
    score = rows["score"].iloc[0]
    assert score > 10 and not rows["in_range"].iloc[0]  # kept, and flagged
    assert rows["in_range"].iloc[1:].isna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 4 and summary["out_of_range"] == 1


def test_names_that_are_no_utf8_get_faithful_rows_and_scores(job, spark, weights_dir, tmp_path):
    """Once: the wrong code (missing) and a mangled URI. Now the row names the file in the
    byte-safe form of ``sources.byte_safe`` and it is scored."""
    folder = non_utf8_library(tmp_path / "load")
    out = tmp_path / "out"
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    assert job([str(folder), "--weights", nr, "--output", str(out)], spark) == 0
    rows = pd.read_parquet(out / "scores")
    odd = f"file://{quote(os.fsencode(folder))}/caf%E9.png"
    assert sorted(rows["uri"]) == sorted([odd, str(folder / "plain.png")])
    assert rows["score"].notna().all() and rows["error_code"].isna().all()


def test_paths_with_pattern_characters_are_paths_or_refused_up_front(
    job, spark, library, weights_dir, tmp_path, capsys
):
    """Once: --output 'sp[x]' scored, then failed (PATH_NOT_FOUND) leaving its staging folder;
    a manifest m[1].parquet "did not exist"; a sibling folder named with ':' broke the
    output's publishing (URISyntaxException)."""
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    g1 = tmp_path / "g1"
    g1.mkdir()
    assert job([str(library), "--weights", nr, "--output", ""], spark) == 2
    assert "--output needs a path" in capsys.readouterr().err
    for name in ("sp[x]", "a{b}", "q?"):
        assert job([str(library), "--weights", nr, "--output", str(g1 / name)], spark) == 2
        assert "as a pattern" in capsys.readouterr().err
    assert list(g1.iterdir()) == []  # refused before any work: no staging folder either
    manifest = tmp_path / "m[1].parquet"
    pd.DataFrame({"uri": sorted(str(p) for p in library.glob("*.png"))}).to_parquet(manifest)
    out = tmp_path / "from-manifest"
    assert job([str(manifest), "--weights", nr, "--output", str(out)], spark) == 0
    assert len(pd.read_parquet(out / "scores")) == 3
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "12:30 backup").mkdir()  # a sibling Hadoop cannot name
    target = tmp_path / "odd" / "a [x"
    assert (
        job([str(library), "--weights", nr, "--output", str(tmp_path / "odd" / "ab")], spark) == 0
    )
    assert job([str(library), "--weights", nr, "--output", str(target)], spark) == 2


def test_the_job_scores_with_the_default_weights_when_none_are_given(job, spark, library, tmp_path):
    out = tmp_path / "out"
    assert job([str(library), "--output", str(out)], spark) == 0
    assert set(pd.read_parquet(out / "scores")["model"]) == {"wadiqam-nr"}


def test_a_crash_between_the_two_renames_is_repaired(spark, tmp_path):
    storage = HadoopStorage(spark, str(tmp_path))
    target = storage.qualify(str(tmp_path / "result"))
    with publish(spark, target, overwrite=False, key="k1") as run:
        storage.write_text(run.path("scores"), "first")
    assert storage.read_text(join(target, "scores")) == "first"
    # the next run finished its staging folder, moved the old result away, then died
    done = tmp_path / ".result.staging-k2"
    done.mkdir()
    (done / "scores").write_text("second")
    (done / COMPLETE_MARKER).write_text("x")
    (tmp_path / "result").rename(tmp_path / ".result.old-k2")
    recover(storage, target)
    assert (tmp_path / "result" / "scores").read_text() == "second"
    # a run that died before completing: the old result comes back
    (tmp_path / "result").rename(tmp_path / ".result.old-k3")
    (tmp_path / ".result.staging-k3").mkdir()
    recover(storage, target)
    assert (tmp_path / "result" / "scores").read_text() == "second"
    # leftovers of dead runs are cleaned; a live run's staging is kept
    host = socket.gethostname()
    dead = tmp_path / ".result.staging-k4"
    dead.mkdir()
    (dead / OWNER).write_text(json.dumps({"host": host, "pid": 2**22 + 7, "started": time.time()}))
    live = tmp_path / ".result.staging-k5"
    live.mkdir()
    (live / OWNER).write_text(
        json.dumps({"host": host, "pid": os.getpid(), "started": time.time()})
    )
    recover(storage, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".result.staging-k5", "result"]


@pytest.mark.slow
def test_spark_submit_keeps_the_contracts_end_to_end(library, weights_dir, nan_weights, tmp_path):
    """The real spark-submit: an --overwrite aimed at the input folder, NaN weights, a corrupt
    manifest. Each gets its code and a one-line message, and nothing is lost. (spark-submit
    hands the Python driver's stderr to its own stdout, so both are read.)"""
    before = snapshot(library)
    score = str(JOBS / "score.py")
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    overwrite = spark_submit(
        "local[1]",
        score,
        str(library),
        "--weights",
        nr,
        "--output",
        str(library),
        "--overwrite",
        cwd=tmp_path,
    )
    assert overwrite.returncode == 2 and "overlaps the input" in overwrite.stdout
    assert snapshot(library) == before
    out = str(tmp_path / "out")
    nan = spark_submit(
        "local[1]",
        score,
        str(library),
        "--weights",
        str(nan_weights),
        "--output",
        out,
        cwd=tmp_path,
    )
    assert nan.returncode == 3 and "NaN or infinite" in nan.stdout
    assert "Traceback" not in nan.stdout + nan.stderr
    corrupt = tmp_path / "m.parquet"
    corrupt.write_bytes(b"PAR1 garbage PAR1")
    bad = spark_submit(
        "local[1]", score, str(corrupt), "--weights", nr, "--output", out, cwd=tmp_path
    )
    assert bad.returncode == 3 and "cannot read the manifest" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr and not Path(out).exists()


@pytest.mark.slow  # real spark-submit runs (the marker's rule)
def test_spark_submit_refuses_lookalike_outputs_and_flipped_weights_and_scores_odd_names(
    library, tmp_path
):
    """The real spark-submit with the shipped defaults: a folder that merely holds
    checkpoints/ is not replaced, the NR default with one flipped exponent bit is refused (once
    every image scored 100), a file name that is no UTF-8 is scored."""
    score = str(JOBS / "score.py")
    lookalike = tmp_path / "exp"
    (lookalike / "checkpoints").mkdir(parents=True)
    (lookalike / "checkpoints" / "epoch=99.ckpt").write_text("w")
    (lookalike / "notes.txt").write_text("n")
    refused = spark_submit(
        "local[1]", score, str(library), "--output", str(lookalike), "--overwrite", cwd=tmp_path
    )
    assert refused.returncode == 2 and "not a deepiqa output" in refused.stdout
    assert (lookalike / "notes.txt").read_text() == "n"
    tensors = load_file(str(default_weights(False)))
    with safe_open(str(default_weights(False)), "pt") as f:
        metadata = f.metadata()
    tensors["quality.3.bias"].view(torch.int16).bitwise_xor_(1 << 13)  # 57.9 -> 14824
    flipped = tmp_path / "flipped.safetensors"
    save_file(tensors, str(flipped), metadata=metadata)
    out = tmp_path / "out"
    corrupt = spark_submit(
        "local[1]", score, str(library), "--weights", str(flipped), "--output", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert corrupt.returncode == 3 and "corrupt weights" in corrupt.stdout and not out.exists()
    odd = non_utf8_library(tmp_path / "odd")
    scored = spark_submit("local[1]", score, str(odd), "--output", str(out), cwd=tmp_path)
    assert scored.returncode == 0, scored.stdout[-2000:]
    rows = pd.read_parquet(out / "scores")
    assert rows["score"].notna().all() and any("caf%E9.png" in u for u in rows["uri"])
