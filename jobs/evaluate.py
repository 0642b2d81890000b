"""spark-submit jobs/evaluate.py: score a manifest's images on Spark and evaluate them.

The scoring is jobs/score.py's (same workers, same outputs under OUT/scores); the driver then
joins the scores to the manifest's subjective scores and writes OUT/report.json (PLCC, SROCC,
KROCC, logistic-mapped PLCC/RMSE per dataset and per distortion type) and prints the tables.
A manifest that joins several datasets gives a cross-dataset evaluation (one row each).
"""

from __future__ import annotations

import argparse
import sys

from deepiqa_core.evaluation.spec import EvaluateSpec, add_evaluate_arguments
from deepiqa_core.exits import EXIT_CODES_HELP
from deepiqa_core.spark.evaluate_job import run_evaluate_job
from deepiqa_core.spark.session import run_job

EPILOG = f"""\
{EXIT_CODES_HELP}

example:
  spark-submit jobs/evaluate.py --dataset tid2013=/data/tid2013 \\
      --weights runs/fr/model.safetensors --output eval/tid2013
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/evaluate.py",
        description=__doc__.split("\n\n")[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_evaluate_arguments(p)
    return p


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(
        "spark-submit jobs/evaluate.py",
        build_parser(),
        lambda session, args: run_evaluate_job(session, EvaluateSpec.from_args(args)),
        argv,
        spark=spark,
    )


if __name__ == "__main__":
    sys.exit(main())
