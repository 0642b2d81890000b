"""jobs/synthesize.py and jobs/evaluate.py on the shared local[2] session."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from deepiqa_core.cli import main as cli_main
from deepiqa_core.datasets import read_manifest
from deepiqa_core.evaluation.spec import EvaluateSpec
from deepiqa_core.spark.evaluate_job import run_evaluate_job
from deepiqa_core.training.options import DataSource

from .conftest import encode, load_job, make_image

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for i in range(3):
        (folder / f"ph{i}.png").write_bytes(encode(make_image(56, 72, seed=10 + i)))
    return folder


def test_synthesize_job_matches_the_local_generator(spark, photos, tmp_path):
    synthesize = load_job("synthesize")
    kinds = ["lens_blur", "jpeg2000", "color_block"]
    args = ["--distortions", *kinds, "--long-side", "64", "--seed", "3"]
    assert synthesize.main([str(photos), "--output", str(tmp_path / "spark"), *args], spark) == 0
    assert cli_main(["synthesize", str(photos), "--output", str(tmp_path / "local"), *args]) == 0
    on_spark = read_manifest(tmp_path / "spark/manifest.parquet")
    local = read_manifest(tmp_path / "local/manifest.parquet")
    assert len(on_spark) == 3 * 3 * 5 and (tmp_path / "spark/_COMPLETE").exists()
    assert on_spark["id"].tolist() == local["id"].tolist()
    assert on_spark["score"].tolist() == local["score"].tolist()
    assert all(
        Path(u).read_bytes() == Path(v).read_bytes()
        for u, v in zip(on_spark["uri"], local["uri"], strict=True)
    )
    assert all(Path(u).parent.parent == tmp_path / "spark" for u in on_spark["uri"])
    assert set(on_spark["dataset"]) == {"synthetic-weak-v1"}
    # the weak label falls with the blur level (tiny 64 px images saturate the other two)
    blur = on_spark[on_spark["distortion"] == "lens_blur"].groupby("ref_id")
    assert all(g.sort_values("level")["score"].is_monotonic_decreasing for _, g in blur)
    # an existing output without --overwrite, an unknown distortion: usage errors
    assert synthesize.main([str(photos), "--output", str(tmp_path / "spark"), *args], spark) == 2
    bad_kind = [str(photos), "--output", str(tmp_path / "x"), "--distortions", "rain"]
    assert synthesize.main(bad_kind, spark) == 2


def test_evaluate_job_scores_and_reports_per_dataset_and_type(
    spark, photos, weights_dir, tmp_path, capsys
):
    assert (
        cli_main(
            [
                "synthesize",
                str(photos),
                "--output",
                str(tmp_path / "set"),
                "--distortions",
                "jpeg",
                "white_noise",
                "--long-side",
                "64",
            ]
        )
        == 0
    )
    manifest = read_manifest(tmp_path / "set/manifest.parquet")
    manifest.loc[0, "uri"] = str(tmp_path / "missing.png")  # one bad row: scored as an error
    manifest.to_parquet(tmp_path / "m.parquet", index=False)
    spec = EvaluateSpec(
        data=DataSource(manifest=tmp_path / "m.parquet"),
        weights=weights_dir / "wadiqam-fr.safetensors",
        output=tmp_path / "eval",
    )
    assert run_evaluate_job(spark, spec) == 1  # one row failed (threshold 0); the rest evaluated
    report = json.loads((tmp_path / "eval/report.json").read_text())
    assert report["failed"] == 1
    entry = report["datasets"]["synthetic-weak-v1"]
    assert entry["images"] == len(manifest) - 1 == 29
    assert set(report["distortions"]["synthetic-weak-v1"]) == {"jpeg", "white_noise"}
    scores = pd.read_parquet(tmp_path / "eval/scores/scores")
    assert len(scores) == len(manifest) and scores["error_code"].notna().sum() == 1
    assert "per distortion type" in capsys.readouterr().out
