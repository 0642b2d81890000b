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

from .conftest import encode, make_image

pytestmark = pytest.mark.spark


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
MAX_PIXELS = "100000"  # the 400x400 image is over it; everything else is far below
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
    import score

    weights = weights_dir / "wadiqam-nr.safetensors"
    out = tmp_path / "out"
    code = score.run(
        spark,
        [
            str(photos),
            "--weights",
            str(weights),
            "--output",
            str(out),
            "--max-pixels",
            MAX_PIXELS,
            "--csv",
        ],
    )
    assert code == 0
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
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_in"] == summary["rows_out"] == len(BAD_AND_ODD)
    assert summary["errors_by_code"] == {"decode_error": 4, "too_large": 1, "too_small": 1}
    assert 1 <= summary["model_loads"] <= 2  # once per Python worker, not per batch or task
    assert summary["worker_peak_rss_mib"] > 100  # torch + the model, measured in the workers
    assert (out / "_COMPLETE").exists()
    assert len(pd.concat(pd.read_csv(p) for p in (out / "scores_csv").glob("*.csv"))) == 11
    assert not list(tmp_path.glob(".out.staging-*"))


def test_manifest_mixes_local_paths_and_s3_with_missing_and_denied(
    spark, photos, weights_dir, tmp_path, s3_server
):
    import boto3
    import score

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
    code = score.run(
        spark,
        [
            str(manifest),
            "--weights",
            str(weights),
            "--output",
            str(out),
            "--uri-column",
            "path",
            "--id-column",
            "image_id",
        ],
    )
    assert code == 0
    df = _scores(out)
    assert df["id"].tolist() == [f"img{i}" for i in range(5)]
    assert df["error_code"].tolist() == [None, None, "missing", "missing", "access_denied"]
    assert df["score"][1] == pytest.approx(_library_score(weights, good), abs=TOL)
    csv_manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"uri": uris[:2]}).to_csv(csv_manifest, index=False)
    code = score.run(
        spark, [str(csv_manifest), "--weights", str(weights), "--output", str(tmp_path / "csv-out")]
    )
    assert code == 0 and _scores(tmp_path / "csv-out")["error_code"].isna().all()


def test_s3_prefix_is_listed_and_read_with_boto3(spark, weights_dir, tmp_path, s3_server):
    # The prefix is given without its trailing "/": moto's server rejects the signature of a
    # list request whose prefix contains "/" (a moto quirk; real S3 accepts both).
    import boto3
    import score

    s3 = boto3.client("s3")
    for i in range(5):
        s3.put_object(Bucket="media", Key=f"prefix/sub/{i}.png", Body=encode(make_image(64, 64, i)))
    s3.put_object(Bucket="media", Key="prefix/readme.txt", Body=b"not listed")
    out = tmp_path / "out"
    code = score.run(
        spark,
        [
            "s3://media/prefix",
            "--weights",
            str(weights_dir / "wadiqam-nr.safetensors"),
            "--output",
            str(out),
        ],
    )
    df = _scores(out)
    assert code == 0
    assert df["uri"].tolist() == [f"s3://media/prefix/sub/{i}.png" for i in range(5)]
    assert df["error_code"].isna().all() and df["num_patches"].eq(4).all()
    glob_out = tmp_path / "glob"
    args = ["s3://media/pre*.png", "--weights", str(weights_dir / "wadiqam-nr.safetensors")]
    assert score.run(spark, [*args, "--output", str(glob_out)]) == 0
    assert len(_scores(glob_out)) == 5


def test_parquet_of_image_bytes(spark, weights_dir, tmp_path):
    import score

    blobs = [encode(make_image(64, 64, i)) for i in range(3)] + [b"garbage"]
    table = tmp_path / "bytes.parquet"
    pd.DataFrame({"id": list("abcd"), "content": blobs}).to_parquet(table)
    out = tmp_path / "out"
    weights = weights_dir / "wadiqam-nr.safetensors"
    code = score.run(
        spark,
        [str(table), "--weights", str(weights), "--output", str(out), "--bytes-column", "content"],
    )
    df = _scores(out)
    assert code == 0 and df["id"].tolist() == list("abcd")
    assert df["error_code"].tolist() == [None, None, None, "decode_error"]
    assert df["score"][2] == pytest.approx(_library_score(weights, blobs[2]), abs=TOL)
    anonymous = tmp_path / "anonymous.parquet"
    pd.DataFrame({"content": blobs}).to_parquet(anonymous)
    args = [str(anonymous), "--weights", str(weights), "--bytes-column", "content"]
    assert score.run(spark, [*args, "--output", str(tmp_path / "anon")]) == 2  # no ids


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
    import score

    refs, dist = fr_tree
    weights = weights_dir / "wadiqam-fr.safetensors"
    out = tmp_path / "out"
    code = score.run(
        spark,
        [
            str(dist),
            "--ref",
            str(refs),
            "--weights",
            str(weights),
            "--output",
            str(out),
            "--partitions",
            "2",
        ],
    )
    df = _scores(out)
    assert code == 0 and len(df) == 8
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
    out2 = tmp_path / "resized"
    score.run(
        spark,
        [
            str(dist),
            "--ref",
            str(refs),
            "--weights",
            str(weights),
            "--output",
            str(out2),
            "--resize-reference",
        ],
    )
    resized = _scores(out2)
    assert resized.set_index("uri").loc[str(dist / "wide__crop.png"), "error_code"] is None


def test_scores_are_identical_whatever_the_partitioning(spark, photos, weights_dir, tmp_path):
    import score

    runs = []
    for n in (1, 3):
        out = tmp_path / f"p{n}"
        score.run(
            spark,
            [
                str(photos),
                "--weights",
                str(weights_dir / "wadiqam-nr.safetensors"),
                "--output",
                str(out),
                "--partitions",
                str(n),
                "--max-pixels",
                MAX_PIXELS,
                "--arrow-batch-rows",
                str(2 + n),
            ],
        )
        runs.append(_scores(out))
    pd.testing.assert_frame_equal(runs[0], runs[1])


def test_patch_table_aggregates_in_spark_to_the_workers_scores(
    spark, photos, weights_dir, tmp_path
):
    import score

    out = tmp_path / "out"
    score.run(
        spark,
        [
            str(photos),
            "--weights",
            str(weights_dir / "wadiqam-nr.safetensors"),
            "--output",
            str(out),
            "--patches",
            "--max-pixels",
            MAX_PIXELS,
        ],
    )
    patches = spark.read.parquet(str(out / "patches"))
    aggregated = score.aggregate_patches(patches).toPandas().set_index("id")
    scores = _scores(out).set_index("id")
    scored = scores[scores["error_code"].isna()]
    assert set(aggregated.index) == set(scored.index)
    for image_id, row in scored.iterrows():
        assert aggregated.loc[image_id, "score"] == pytest.approx(row["score"], abs=1e-9)
        assert aggregated.loc[image_id, "num_patches"] == row["num_patches"]
    first = patches.where(f"id = '{scored.index[0]}'").orderBy("patch_index").toPandas()
    assert first["y"].iloc[0] == 0 and first["x"].iloc[1] == 32 and (first["weight"] > 0).all()


def test_error_rate_threshold_and_failures_leave_no_output(spark, photos, weights_dir, tmp_path):
    import score

    weights = str(weights_dir / "wadiqam-nr.safetensors")
    out = tmp_path / "strict"
    code = score.run(
        spark,
        [
            str(photos),
            "--weights",
            weights,
            "--output",
            str(out),
            "--max-pixels",
            MAX_PIXELS,
            "--max-error-rate",
            "0.1",
        ],
    )
    assert code == 1 and (out / "_COMPLETE").exists()  # written, but the scheduler is told
    assert score.run(spark, [str(photos), "--weights", weights, "--output", str(out)]) == 3
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    assert (
        score.run(spark, [str(photos), "--weights", str(bad), "--output", str(tmp_path / "x")]) == 3
    )
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))
    assert (
        score.run(
            spark,
            [
                str(photos),
                "--weights",
                weights,
                "--ref",
                str(photos),
                "--output",
                str(tmp_path / "y"),
            ],
        )
        == 2
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        score.run(spark, [str(empty), "--weights", weights, "--output", str(tmp_path / "z")]) == 3
    )


def test_huge_images_tiled_across_tasks_score_as_when_whole(spark, photos, weights_dir, tmp_path):
    import score

    big = tmp_path / "big"
    big.mkdir()
    for name in ("good1.png", "corrupt.jpg", "tiny.png"):
        (big / name).write_bytes((photos / name).read_bytes())
    (big / "tall.png").write_bytes(encode(make_image(600, 100, seed=7)))  # 18 x 3 patches
    weights = str(weights_dir / "wadiqam-nr.safetensors")
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    assert score.run(spark, [str(big), "--weights", weights, "--output", str(whole)]) == 0
    assert (
        score.run(
            spark,
            [
                str(big),
                "--weights",
                weights,
                "--output",
                str(tiled),
                "--tile-rows",
                "4",
                "--partitions",
                "3",
                "--patches",
            ],
        )
        == 0
    )
    a, b = _scores(whole), _scores(tiled)
    assert b["id"].tolist() == a["id"].tolist() and len(b) == 4
    assert b["error_code"].tolist() == a["error_code"].tolist()
    np.testing.assert_allclose(b["score"], a["score"], atol=1e-9)
    np.testing.assert_array_equal(b["num_patches"], a["num_patches"])
    patches = pd.read_parquet(tiled / "patches")
    tall = patches[patches["id"].str.endswith("tall.png")].sort_values("patch_index")
    assert len(tall) == 54 and tall["patch_index"].tolist() == list(range(54))
    assert tall["y"].max() == 17 * 32 and tall["x"].tolist()[:4] == [0, 32, 64, 0]


def test_tiled_full_reference_scores_as_when_whole(spark, fr_tree, weights_dir, tmp_path):
    import score

    refs, dist = fr_tree
    weights = str(weights_dir / "wadiqam-fr.safetensors")
    common = [str(dist), "--ref", str(refs), "--weights", weights]
    assert score.run(spark, [*common, "--output", str(tmp_path / "w")]) == 0
    assert score.run(spark, [*common, "--output", str(tmp_path / "t"), "--tile-rows", "1"]) == 0
    a, b = _scores(tmp_path / "w"), _scores(tmp_path / "t")
    assert b["error_code"].tolist() == a["error_code"].tolist()
    np.testing.assert_allclose(b["score"], a["score"], atol=1e-9)
