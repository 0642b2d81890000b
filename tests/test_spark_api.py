"""The Spark subpackage's public functions, called directly; and the CLI and the Spark job
listing and pairing the same folder identically."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deepiqa_core import Scorer, decode_image, load_weights
from deepiqa_core.cli import main as cli_main
from deepiqa_core.errors import UsageError
from deepiqa_core.options import InputSpec
from deepiqa_core.pairing import pair_images
from deepiqa_core.runs.score_spec import ScoreJobSpec
from deepiqa_core.spark import (
    aggregate_patches,
    attach_references,
    explode_patches,
    read_inputs,
    score_images,
)
from deepiqa_core.spark.score_job import run_score_job

from .conftest import encode, make_image
from .test_rules import TRICKY_NAMES

pytestmark = pytest.mark.spark


def test_pairing_in_spark_equals_pairing_in_python(spark):
    images = [f"d/{name}" for name in TRICKY_NAMES]
    refs = ["r/cat.png", "r/cat.jpg", "q/cat.tif", "r/x.png", "r/__lead.jpg", "r/trail.png"]
    refs += ["r/a.b.png", "r/noext", "r/dog.bmp", "r/fish.png", "r/.png"]
    items = spark.createDataFrame([(u,) for u in images], "uri string")
    references = spark.createDataFrame([(u,) for u in refs], "ref_uri string")
    joined = attach_references(items, references).toPandas()
    in_spark = dict(
        zip(joined["uri"], joined["ref_uri"].where(joined["ref_uri"].notna()), strict=True)
    )
    in_python = dict(pair_images(images, refs))
    assert in_spark == in_python
    assert (
        in_python["d/cat__jpeg_q10.jpg"] == "q/cat.tif"
        and in_python["d/x__weird__y.png"] == "r/x.png"
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, Path]:
    """References and distorted images in nested folders, with names that test the rules."""
    root = tmp_path_factory.mktemp("agree")
    refs, dist = root / "refs", root / "dist"
    (refs / "more").mkdir(parents=True)
    (dist / "nested" / "deeper").mkdir(parents=True)
    scenes = {"cat": 1, "x": 2, "a.b": 3}
    for name, seed in scenes.items():
        (refs / f"{name}.png").write_bytes(encode(make_image(64, 64, seed)))
    (refs / "more" / "cat.jpg").write_bytes(encode(make_image(64, 64, 9), "JPEG"))  # shared stem
    (refs / "readme.txt").write_text("not an image")
    for rel, seed in {
        "cat__jpeg.jpg": 1,
        "nested/x__weird__y.png": 2,
        "nested/deeper/a.b__c.d.png": 3,
        "orphan__blur.png": 4,
        "nested/cat.PNG": 1,
    }.items():
        (dist / rel).write_bytes(encode(make_image(64, 64, seed + 20)))
    (dist / "notes.txt").write_text("skipped")
    return refs, dist


def test_cli_and_spark_job_list_and_pair_the_same_folder(
    spark, tree, weights_dir, tmp_path, capsys
):
    refs, dist = tree
    weights = weights_dir / "wadiqam-fr.safetensors"
    for recursive in (True, False):
        flag = "--recursive" if recursive else "--no-recursive"
        cli_main(
            [
                "score",
                str(dist),
                "--ref",
                str(refs),
                "--weights",
                str(weights),
                "--format",
                "json",
                flag,
            ]
        )
        cli = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
        out = tmp_path / f"job-{recursive}"
        inputs = InputSpec(str(dist), ref=str(refs), recursive=recursive)
        run_score_job(spark, ScoreJobSpec(inputs, weights, out))
        job = pd.read_parquet(out / "scores").set_index("uri")
        assert sorted(cli) == sorted(job.index)
        for uri, row in job.iterrows():
            assert cli[uri]["reference"] == (
                row["ref_uri"] if isinstance(row["ref_uri"], str) else None
            )
            assert cli[uri]["error_code"] == row["error_code"]
            if row["error_code"] is None:
                assert cli[uri]["score"] == pytest.approx(row["score"], abs=1e-5)
    assert len(cli) == 2  # not recursive: the two files at the top
    assert Path(cli[str(dist / "cat__jpeg.jpg")]["reference"]) == refs / "cat.png"
    assert cli[str(dist / "orphan__blur.png")]["error_code"] == "unpaired"


def library_score(weights: Path, data: bytes) -> float:
    return Scorer(load_weights(weights)[0], device="cpu").score_one(decode_image(data)).score


def test_score_images_keeps_the_users_columns(spark, weights_dir, tmp_path):
    weights = weights_dir / "wadiqam-nr.safetensors"
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(encode(make_image(64, 96, seed=i)))
    rows = [(str(p), i, None if i == 1 else f"note {i}") for i, p in enumerate(paths)]
    rows.append((str(tmp_path / "absent.png"), 3, "gone"))
    df = spark.createDataFrame(rows, "path string, n int, note string")
    scored = score_images(df, weights, uri_col="path").orderBy("n").toPandas()
    assert scored.columns.tolist() == [
        *["path", "n", "note", "score", "num_patches", "in_range", "width", "height", "bytes"],
        *["error_code", "error_message", "model", "model_sha256"],
    ]
    assert scored["n"].tolist() == [0, 1, 2, 3] and scored["note"].tolist()[:2] == ["note 0", None]
    assert scored["error_code"].tolist() == [None, None, None, "missing"]
    assert scored["width"].tolist()[:3] == [96] * 3 and scored["height"].tolist()[:3] == [64] * 3
    assert scored["bytes"][0] == paths[0].stat().st_size
    assert scored["score"][0] == pytest.approx(
        library_score(weights, paths[0].read_bytes()), abs=1e-5
    )
    with pytest.raises(UsageError, match="already has columns named"):
        score_images(df.withColumnRenamed("note", "score"), weights, uri_col="path")


def test_score_images_with_bytes_references_and_patches(spark, weights_dir, tmp_path):
    weights = weights_dir / "wadiqam-fr.safetensors"
    ref = make_image(64, 96, seed=5)
    rows = [("a", encode(ref, "JPEG", quality=q), encode(ref)) for q in (10, 90)]
    rows.append(("b", encode(ref), None))
    df = spark.createDataFrame(rows, "key string, img binary, ref binary")
    scored = score_images(
        df, weights, uri_col=None, bytes_col="img", ref_bytes_col="ref", with_patches=True
    ).orderBy("key")
    result = scored.toPandas()
    assert result["error_code"].tolist() == [None, None, "unpaired"]
    assert result["num_patches"].tolist()[:2] == [6, 6]
    patches = explode_patches(
        scored.where("error_code IS NULL").withColumn("id", scored.img.cast("string"))
    )
    pooled = aggregate_patches(patches).toPandas().sort_values("score")
    assert sorted(pooled["score"]) == pytest.approx(sorted(result["score"][:2]), abs=1e-9)


def test_read_inputs_applies_the_manifest_column_rule(spark, tmp_path):
    manifest = tmp_path / "m.parquet"
    pd.DataFrame({"path": ["a.png", "b.png"], "extra": [1, 2]}).to_parquet(manifest)
    items = read_inputs(spark, InputSpec(str(manifest), uri_column="path"), False, "wadiqam-nr")
    assert items.toPandas().to_dict("list") == {"id": ["a.png", "b.png"], "uri": ["a.png", "b.png"]}
    with pytest.raises(UsageError, match="no 'uri'"):
        read_inputs(spark, InputSpec(str(manifest)), False, "wadiqam-nr")
    with pytest.raises(UsageError, match="full-reference"):
        read_inputs(spark, InputSpec(str(manifest), uri_column="path"), True, "wadiqam-fr")
