"""The evaluation job (``spark-submit jobs/evaluate.py``): a manifest's images scored by the
scoring job, then compared with the manifest's subjective scores on the driver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pandas as pd
from pyspark.sql import SparkSession

from ..datasets import write_manifest
from ..errors import OutputExistsError
from ..evaluation import evaluate_predictions, format_report
from ..evaluation.spec import EvaluateSpec
from ..exits import threshold_code
from ..options import InputSpec
from ..outputs import check_replaceable, check_separate, write_marker
from ..runs.score_spec import ScoreJobSpec
from ..runs.storage import join
from .score_job import run_score_job
from .summary import format_spark_summary


def run_evaluate_job(spark: SparkSession, spec: EvaluateSpec) -> int:
    """Writes OUT/manifest.parquet, OUT/scores/ (the scoring job's output) and OUT/report.json;
    prints the report. Exit code: THRESHOLD when more rows failed than --max-error-rate."""
    out = spec.output.absolute()
    check_separate(out, [spec.data.manifest, spec.weights])
    if out.exists():
        if not spec.overwrite:
            raise OutputExistsError(f"{out} exists; pass --overwrite to replace it")
        check_replaceable(out)
    manifest = spec.data.load()
    out.mkdir(parents=True, exist_ok=True)
    write_marker(out, "evaluation")
    write_manifest(manifest, out / "manifest.parquet")  # what the scoring reads
    scoring = ScoreJobSpec(
        inputs=InputSpec(str(out / "manifest.parquet")),
        weights=spec.weights,
        output=out / "scores",
        overwrite=True,
        scoring=spec.scoring,
    )
    summary = run_score_job(spark, scoring)
    print(format_spark_summary(summary))
    scores = cast(pd.DataFrame, spark.read.parquet(join(summary.output, "scores")).toPandas())
    frame = manifest.merge(
        scores[["id", "score", "error_code"]].rename(columns={"score": "prediction"}),
        on="id",
        how="left",
    )
    report = evaluate_predictions(frame, summary_direction(spec.weights), spec.logistic_params)
    report["model"] = {"variant": summary.model, "file": str(spec.weights)}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(format_report(report))
    return threshold_code(report["failed"], len(manifest), spec.scoring.max_error_rate)


def summary_direction(weights: Path) -> str:
    from ..weights import read_meta

    return read_meta(weights).score_direction
