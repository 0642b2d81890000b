"""spark-submit jobs/evaluate.py: score a manifest's images on Spark and evaluate them.

The scoring is jobs/score.py's (same workers, same outputs under OUT/scores); the driver then
joins the scores to the manifest's subjective scores and writes OUT/report.json (PLCC, SROCC,
KROCC, logistic-mapped PLCC/RMSE per dataset and per distortion type) and prints the tables.
A manifest that joins several datasets gives a cross-dataset evaluation (one row each).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # jobs/*.py, on the driver only

import score  # noqa: E402
from common import job_main  # noqa: E402

from deepiqa_core.datasets import DatasetError, write_manifest  # noqa: E402
from deepiqa_core.evaluation import evaluate_predictions, format_report  # noqa: E402
from deepiqa_core.training.options import add_data_arguments, load_training_manifest  # noqa: E402
from deepiqa_core.weights import read_meta  # noqa: E402

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/evaluate.py",
        description=__doc__.split("\n\n")[0],
        epilog="example: spark-submit jobs/evaluate.py --dataset tid2013=/data/tid2013 "
        "--weights runs/fr/model.safetensors --output eval/tid2013",
    )
    add_data_arguments(p)
    p.add_argument("--weights", required=True, help="a deepiqa .safetensors file")
    p.add_argument("--output", type=Path, required=True, help="folder for scores/ and report")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--logistic-params", type=int, choices=[4, 5], default=5)
    return p


def run(spark, argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        manifest = load_training_manifest(args)
    except (DatasetError, ValueError) as exc:
        print(f"evaluate.py: {exc}", file=sys.stderr)
        return EXIT_FATAL
    out = args.output.absolute()
    if out.exists() and not args.overwrite:
        print(f"evaluate.py: {out} exists; pass --overwrite to replace it", file=sys.stderr)
        return EXIT_FATAL
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(manifest, out / "manifest.parquet")  # what score.py reads
    code = score.run(
        spark,
        [
            str(out / "manifest.parquet"),
            "--weights",
            args.weights,
            "--output",
            str(out / "scores"),
            "--overwrite",
        ],
    )
    if code not in (score.EXIT_OK, score.EXIT_ERROR_RATE):
        return code
    scores = spark.read.parquet(str(out / "scores" / "scores")).toPandas()
    frame = manifest.merge(
        scores[["id", "score", "error_code"]].rename(columns={"score": "prediction"}),
        on="id",
        how="left",
    )
    meta = read_meta(args.weights)
    report = evaluate_predictions(frame, meta.score_direction, args.logistic_params)
    report["model"] = {"variant": meta.variant, "file": args.weights}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(format_report(report))
    return EXIT_PARTIAL if report["failed"] else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return job_main(
        "deepiqa-evaluate", build_parser(), run, lambda _: {"spark.log.level": "WARN"}, argv
    )


if __name__ == "__main__":
    sys.exit(main())
