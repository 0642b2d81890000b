"""spark-submit jobs/score.py: batch image-quality scoring with DeepIQA on Spark.

Arguments only: the flags and the spec are ``deepiqa_core.runs.score_spec``'s, the job is
``deepiqa_core.spark.score_job`` (its docstring tells the data flow).
"""

from __future__ import annotations

import argparse
import sys

from deepiqa_core.exits import ERROR_CODES_HELP, EXIT_CODES_HELP
from deepiqa_core.options import INPUTS_HELP
from deepiqa_core.runs.score_spec import OUTPUT_HELP, ScoreJobSpec, add_score_job_arguments
from deepiqa_core.spark.score_job import run_score_jobs
from deepiqa_core.spark.session import run_job

EPILOG = f"""\
{INPUTS_HELP}

{OUTPUT_HELP}

{ERROR_CODES_HELP}

{EXIT_CODES_HELP}

examples:
  spark-submit jobs/score.py                                   # bundled samples, shipped weights
  spark-submit jobs/score.py s3://media/2026/ --weights nr.safetensors --output out/nightly \\
      --csv --max-error-rate 0.01
  spark-submit jobs/score.py distorted/ --ref references/ --weights fr.safetensors --output out/fr
  spark-submit jobs/score.py manifest.parquet --output hdfs:///scores/m --patches --resume
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/score.py",
        description="Score images with DeepIQA on Spark. With no INPUT, scores the bundled "
        "sample images (NR and FR) with the shipped default weights.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_score_job_arguments(p)
    return p


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(
        "spark-submit jobs/score.py",
        build_parser(),
        lambda session, args: run_score_jobs(session, ScoreJobSpec.all_from_args(args)),
        argv,
        spark=spark,
    )


if __name__ == "__main__":
    sys.exit(main())
