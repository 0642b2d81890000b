"""The Spark scoring job on a real local[2] session, real files and a real S3 endpoint."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from deepiqa_core import Scorer, decode_image, load_weights
from deepiqa_core.batch import BatchConfig
from deepiqa_core.errors import UsageError
from deepiqa_core.options import InputSpec, ScoringOptions
from deepiqa_core.runs.score_spec import Execution, ScoreJobSpec
from deepiqa_core.spark import aggregate_patches
from deepiqa_core.spark.score_job import run_score_job

from .conftest import encode, load_job, make_image

pytestmark = pytest.mark.spark


def score(
    spark,
    source,
    weights,
    output,
    *,
    ref=None,
    max_pixels=None,
    execution=None,
    batch=None,
    inputs=None,
    **kw,
) -> dict:
    """The scoring job's library call (no argv): returns its summary."""
    batch = batch or {}
    if max_pixels is not None:
        batch["max_pixels"] = max_pixels
    spec = ScoreJobSpec(
        inputs=InputSpec(str(source), ref=ref and str(ref), **(inputs or {})),
        weights=Path(weights),
        output=Path(output),
        scoring=ScoringOptions(batch=BatchConfig(**batch)),
        execution=Execution(**(execution or {})),
        **kw,
    )
    return run_score_job(spark, spec)


def _png16(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(make_image(h, w)[:, :, 0].astype(np.uint16) * 257).save(buf, "PNG")
    return buf.getvalue()


def _cmyk_jpeg(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(make_image(h, w, seed=3)).convert("CMYK").save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _palette_png(h: int, w: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(make_image(h, w, seed=4)).quantize(32).save(buf, "PNG")
    return buf.getvalue()


# name -> (bytes, expected error code or None)
BAD_AND_ODD = {
    "good1.png": (encode(make_image(64, 96, seed=1)), None),
    "good2.jpg": (encode(make_image(96, 64, seed=2), "JPEG", quality=85), None),
    "cmyk.jpg": (_cmyk_jpeg(64, 64), None),
    "gray16.png": (_png16(64, 80), None),
    "palette.png": (_palette_png(70, 70), None),
    "corrupt.jpg": (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4, "decode_error"),
    "truncated.jpg": (encode(make_image(96, 96, seed=5), "JPEG")[:400], "decode_error"),
    "empty.png": (b"", "decode_error"),
    "notes.png": (b"this is text, not an image", "decode_error"),
    "tiny.png": (encode(make_image(16, 40)), "too_small"),
    "huge.png": (encode(np.zeros((400, 400, 3), np.uint8)), "too_large"),
}
MAX_PIXELS = 100_000  # the 400x400 image is over it; everything else is far below
# Workers run torch with spark.task.cpus (1) threads, the library here with 2: the thread count
# changes float summation order (~1e-7 relative), hence not bitwise equality with the library.
TOL = 1e-5


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for name, (data, _) in BAD_AND_ODD.items():
        (folder / name).write_bytes(data)
    return folder


def _scores(output: Path, name: str = "scores") -> pd.DataFrame:
    return pd.read_parquet(output / name).sort_values("id").reset_index(drop=True)


def _library_score(weights: Path, data: bytes, ref: bytes | None = None) -> float:
    scorer = Scorer(load_weights(weights)[0], device="cpu")
    r = None if ref is None else decode_image(ref)
    return scorer.score_one(decode_image(data), r).score


def test_folder_gives_one_row_per_file_with_its_error_code(spark, photos, weights_dir, tmp_path):
    weights = weights_dir / "wadiqam-nr.safetensors"
    out = tmp_path / "out"
    summary = score(spark, photos, weights, out, max_pixels=MAX_PIXELS, csv=True)
    df = _scores(out)
    assert len(df) == len(BAD_AND_ODD) and df["id"].is_unique
    by_name = {Path(u).name: row for u, row in zip(df["uri"], df.itertuples(), strict=True)}
    for name, (data, expected) in BAD_AND_ODD.items():
        row = by_name[name]
        assert row.error_code == expected, (name, row.error_message)
        if expected is None:
            assert row.score == pytest.approx(_library_score(weights, data), abs=TOL)
            assert row.model == "wadiqam-nr" and len(row.model_sha256) == 64
        else:
            assert np.isnan(row.score) and row.error_message
    assert json.loads((out / "summary.json").read_text()) == summary.to_json()
    assert summary.stats.rows_in == summary.stats.rows_out == len(BAD_AND_ODD)
    assert summary.stats.errors_by_code == {"decode_error": 4, "too_large": 1, "too_small": 1}
    assert 1 <= summary.model_loads <= 2  # once per Python worker, not per batch or task
    assert summary.model_loads_by_compute == {"cpu/fp32": summary.model_loads}
    assert summary.engine_facts["worker_peak_rss_mib"] > 100  # torch + the model, in the workers
    assert json.loads((out / "summary.json").read_text())["schema_version"] == 1
    assert (out / "_COMPLETE").exists()
    assert len(pd.concat(pd.read_csv(p) for p in (out / "scores_csv").glob("*.csv"))) == 11
    assert not list(tmp_path.glob(".out.staging-*"))


def test_manifest_mixes_local_paths_and_s3_with_missing_and_denied(
    spark, photos, weights_dir, tmp_path, s3_server
):
    import boto3

    s3 = boto3.client("s3")
    good = BAD_AND_ODD["good2.jpg"][0]
    s3.put_object(Bucket="media", Key="m/good2.jpg", Body=good)
    s3.put_object(Bucket="media", Key="secret/good2.jpg", Body=good)
    uris = [
        str(photos / "good1.png"),
        "s3://media/m/good2.jpg",
        str(photos / "absent.png"),
        "s3://media/m/absent.jpg",
        "s3://media/secret/good2.jpg",
    ]
    manifest = tmp_path / "manifest.parquet"
    pd.DataFrame({"image_id": [f"img{i}" for i in range(5)], "path": uris}).to_parquet(manifest)
    out = tmp_path / "out"
    weights = weights_dir / "diqam-nr.safetensors"
    columns = {"uri_column": "path", "id_column": "image_id"}
    score(spark, manifest, weights, out, inputs=columns)
    df = _scores(out)
    assert df["id"].tolist() == [f"img{i}" for i in range(5)]
    assert df["error_code"].tolist() == [None, None, "missing", "missing", "access_denied"]
    assert df["score"][1] == pytest.approx(_library_score(weights, good), abs=TOL)
    csv_manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"uri": uris[:2]}).to_csv(csv_manifest, index=False)
    score(spark, csv_manifest, weights, tmp_path / "csv-out")
    assert _scores(tmp_path / "csv-out")["error_code"].isna().all()


def test_s3_prefix_is_listed_and_read_with_boto3(spark, weights_dir, tmp_path, s3_server):
    import boto3

    s3 = boto3.client("s3")
    for i in range(5):
        s3.put_object(Bucket="media", Key=f"prefix/sub/{i}.png", Body=encode(make_image(64, 64, i)))
    s3.put_object(Bucket="media", Key="prefix/readme.txt", Body=b"not listed")
    weights = weights_dir / "wadiqam-nr.safetensors"
    score(spark, "s3://media/prefix", weights, tmp_path / "out")
    df = _scores(tmp_path / "out")
    assert df["uri"].tolist() == [f"s3://media/prefix/sub/{i}.png" for i in range(5)]
    assert df["error_code"].isna().all() and df["num_patches"].eq(4).all()
    score(spark, "s3://media/pre*.png", weights, tmp_path / "glob")
    assert len(_scores(tmp_path / "glob")) == 5


def test_parquet_of_image_bytes(spark, weights_dir, tmp_path):
    blobs = [encode(make_image(64, 64, i)) for i in range(3)] + [b"garbage"]
    table = tmp_path / "bytes.parquet"
    pd.DataFrame({"id": list("abcd"), "content": blobs}).to_parquet(table)
    weights = weights_dir / "wadiqam-nr.safetensors"
    score(spark, table, weights, tmp_path / "out", inputs={"bytes_column": "content"})
    df = _scores(tmp_path / "out")
    assert df["id"].tolist() == list("abcd")
    assert df["error_code"].tolist() == [None, None, None, "decode_error"]
    assert df["score"][2] == pytest.approx(_library_score(weights, blobs[2]), abs=TOL)
    anonymous = tmp_path / "anonymous.parquet"
    pd.DataFrame({"content": blobs}).to_parquet(anonymous)
    with pytest.raises(UsageError, match="needs an 'id' column"):
        score(spark, anonymous, weights, tmp_path / "anon", inputs={"bytes_column": "content"})


@pytest.fixture(scope="module")
def fr_tree(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fr")
    refs, dist = root / "ref", root / "dist"
    refs.mkdir(), dist.mkdir()
    for k in range(2):
        ref = make_image(64, 96, seed=10 + k)
        (refs / f"scene{k}.png").write_bytes(encode(ref))
        for q in (10, 30, 60):
            (dist / f"scene{k}__jpeg{q}.jpg").write_bytes(encode(ref, "JPEG", quality=q))
    (dist / "orphan__blur.png").write_bytes(encode(make_image(64, 96, seed=30)))
    (refs / "wide.png").write_bytes(encode(make_image(64, 128, seed=31)))
    (dist / "wide__crop.png").write_bytes(encode(make_image(64, 96, seed=31)))
    return refs, dist


def test_fr_pairs_by_name_shares_references_and_reports_unpaired(
    spark, fr_tree, weights_dir, tmp_path
):
    refs, dist = fr_tree
    weights = weights_dir / "wadiqam-fr.safetensors"
    out = tmp_path / "out"
    score(spark, dist, weights, out, ref=refs, execution={"partitions": 2})
    df = _scores(out)
    assert len(df) == 8
    rows = {Path(u).name: r for u, r in zip(df["uri"], df.itertuples(), strict=True)}
    assert rows["orphan__blur.png"].error_code == "unpaired"
    assert rows["wide__crop.png"].error_code == "size_mismatch"
    for k in range(2):
        for q in (10, 30, 60):
            row = rows[f"scene{k}__jpeg{q}.jpg"]
            assert Path(row.ref_uri).name == f"scene{k}.png"
            expected = _library_score(
                weights,
                (dist / f"scene{k}__jpeg{q}.jpg").read_bytes(),
                (refs / f"scene{k}.png").read_bytes(),
            )
            assert row.score == pytest.approx(expected, abs=TOL)
    resized = tmp_path / "resized"
    score(spark, dist, weights, resized, ref=refs, batch={"resize_reference": True})
    by_uri = _scores(resized).set_index("uri")
    assert by_uri.loc[str(dist / "wide__crop.png"), "error_code"] is None


def test_scores_are_identical_whatever_the_partitioning(spark, photos, weights_dir, tmp_path):
    runs = []
    for n in (1, 3):
        out = tmp_path / f"p{n}"
        execution = {"partitions": n, "arrow_batch_rows": 2 + n}
        weights = weights_dir / "wadiqam-nr.safetensors"
        score(spark, photos, weights, out, max_pixels=MAX_PIXELS, execution=execution)
        runs.append(_scores(out))
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_patch_table_aggregates_in_spark_to_the_workers_scores(
    spark, photos, weights_dir, tmp_path
):
    out = tmp_path / "out"
    weights = weights_dir / "wadiqam-nr.safetensors"
    score(spark, photos, weights, out, max_pixels=MAX_PIXELS, patches=True)
    patches = spark.read.parquet(str(out / "patches"))
    aggregated = aggregate_patches(patches).toPandas().set_index("id")
    scores = _scores(out).set_index("id")
    scored = scores[scores["error_code"].isna()]
    assert set(aggregated.index) == set(scored.index)
    for image_id, row in scored.iterrows():
        assert aggregated.loc[image_id, "score"] == pytest.approx(row["score"], abs=1e-9)
        assert aggregated.loc[image_id, "num_patches"] == row["num_patches"]
    first = patches.where(f"id = '{scored.index[0]}'").orderBy("patch_index").toPandas()
    assert first["y"].iloc[0] == 0 and first["x"].iloc[1] == 32 and (first["weight"] > 0).all()


def test_exit_codes_of_the_job(spark, photos, weights_dir, tmp_path, capsys):
    main = load_job("score").main
    weights = str(weights_dir / "wadiqam-nr.safetensors")
    out = tmp_path / "strict"
    common = [str(photos), "--weights", weights, "--max-pixels", str(MAX_PIXELS)]
    threshold = [*common, "--max-error-rate", "0.1", "--output", str(out)]
    assert main(threshold, spark=spark) == 1 and (out / "_COMPLETE").exists()  # published
    assert (
        main([*common, "--max-error-rate", "0.9", "--output", str(tmp_path / "ok")], spark=spark)
        == 0
    )
    assert main([*common, "--output", str(out)], spark=spark) == 2  # exists, no --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    assert (
        main([str(photos), "--weights", str(bad), "--output", str(tmp_path / "x")], spark=spark)
        == 3
    )
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))
    with_ref = [str(photos), "--weights", weights, "--ref", str(photos)]
    assert main([*with_ref, "--output", str(tmp_path / "y")], spark=spark) == 2  # NR + --ref
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        main([str(empty), "--weights", weights, "--output", str(tmp_path / "z")], spark=spark) == 3
    )
    assert main([str(tmp_path / "nope"), "--output", str(tmp_path / "n")], spark=spark) == 2
    assert "does not exist" in capsys.readouterr().err


def test_huge_images_tiled_across_tasks_score_as_when_whole(spark, photos, weights_dir, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    for name in ("good1.png", "corrupt.jpg", "tiny.png"):
        (big / name).write_bytes((photos / name).read_bytes())
    (big / "tall.png").write_bytes(encode(make_image(600, 100, seed=7)))  # 18 x 3 patches
    weights = weights_dir / "wadiqam-nr.safetensors"
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    score(spark, big, weights, whole)
    tiling = {"tile_rows": 4, "patches": True, "execution": {"partitions": 3}}
    score(spark, big, weights, tiled, **tiling)
    a, b = _scores(whole), _scores(tiled)
    assert b["id"].tolist() == a["id"].tolist() and len(b) == 4
    assert b["error_code"].tolist() == a["error_code"].tolist()
    np.testing.assert_allclose(b["score"], a["score"], atol=1e-9)
    np.testing.assert_array_equal(b["num_patches"], a["num_patches"])
    patches = pd.read_parquet(tiled / "patches")
    tall = patches[patches["id"].str.endswith("tall.png")].sort_values("patch_index")
    assert len(tall) == 54 and tall["patch_index"].tolist() == list(range(54))
    assert tall["y"].max() == 17 * 32 and tall["x"].tolist()[:4] == [0, 32, 64, 0]


@pytest.mark.slow
def test_tiled_full_reference_scores_as_when_whole(spark, fr_tree, weights_dir, tmp_path):
    refs, dist = fr_tree
    weights = weights_dir / "wadiqam-fr.safetensors"
    score(spark, dist, weights, tmp_path / "w", ref=refs)
    score(spark, dist, weights, tmp_path / "t", ref=refs, tile_rows=1)
    a, b = _scores(tmp_path / "w"), _scores(tmp_path / "t")
    assert b["error_code"].tolist() == a["error_code"].tolist()
    np.testing.assert_allclose(b["score"], a["score"], atol=1e-9)
