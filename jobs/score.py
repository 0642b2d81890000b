"""spark-submit jobs/score.py: batch image-quality scoring with DeepIQA on Spark.

Arguments only: the job is ``deepiqa_core.spark.score_job`` (its docstring tells the data flow).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepiqa_core.defaults import WEIGHTS_HELP, default_weights
from deepiqa_core.exits import ERROR_CODES_HELP, EXIT_CODES_HELP, UsageError
from deepiqa_core.options import (
    INPUTS_HELP,
    add_input_arguments,
    add_scoring_arguments,
    input_spec,
    positive,
    scoring_options,
)
from deepiqa_core.spark.score_job import (
    DEFAULT_OUTPUT,
    OUTPUT_HELP,
    Execution,
    ScoreJobSpec,
    default_specs,
    run_score_jobs,
)
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
    add_input_arguments(p, input_help="folder, glob, file, s3:// prefix or manifest (see below)")
    p.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    p.add_argument("--output", help=f"folder or URI to publish to (default {DEFAULT_OUTPUT}/...)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier deepiqa output")
    p.add_argument("--resume", action="store_true", help="continue this run after a crash")
    p.add_argument("--csv", action="store_true", help="also write the scores as CSV")
    p.add_argument("--patches", action="store_true", help="also write the per-patch table")
    p.add_argument(
        "--pass-columns",
        nargs="*",
        metavar="COLUMN",
        help="manifest columns copied to the score rows (default: all; none: no columns)",
    )
    p.add_argument(
        "--tile-rows",
        type=positive,
        help="split each image into tiles of this many patch rows, scored by separate tasks "
        "and pooled in Spark (for huge images; ids must be unique)",
    )
    add_scoring_arguments(p)
    defaults = Execution
    g = p.add_argument_group("execution")
    g.add_argument("--partitions", type=positive, help="default: rows / --rows-per-partition")
    g.add_argument("--rows-per-partition", type=positive, default=defaults.rows_per_partition)
    g.add_argument(
        "--arrow-batch-rows",
        type=positive,
        default=defaults.arrow_batch_rows,
        help="rows per Arrow batch sent to Python (image bytes are large)",
    )
    g.add_argument("--torch-threads", type=positive, help="default: spark.task.cpus")
    g.add_argument(
        "--chunk-rows",
        type=positive,
        default=defaults.chunk_rows,
        help="rows scored and committed together: what --resume skips after a crash",
    )
    g.add_argument("--rows-per-file", type=positive, default=defaults.rows_per_file)
    g.add_argument("--fail-once-marker", help=argparse.SUPPRESS)  # testing aid
    return p


def execution(args: argparse.Namespace) -> Execution:
    return Execution(
        partitions=args.partitions,
        rows_per_partition=args.rows_per_partition,
        arrow_batch_rows=args.arrow_batch_rows,
        torch_threads=args.torch_threads,
        chunk_rows=args.chunk_rows,
        rows_per_file=args.rows_per_file,
        fail_once_marker=args.fail_once_marker,
    )


def specs(args: argparse.Namespace) -> list[ScoreJobSpec]:
    """The runs the arguments ask for: the embedded default (two), or one."""
    scoring = scoring_options(args)
    if args.input is None:
        if args.weights or args.ref:
            raise UsageError("--weights/--ref need an INPUT")
        return default_specs(args.output, args.overwrite, scoring, execution(args))
    if args.output is None:
        raise UsageError("--output is required with an INPUT")
    return [
        ScoreJobSpec(
            inputs=input_spec(args),
            weights=args.weights or default_weights(args.ref is not None),
            output=args.output,
            overwrite=args.overwrite,
            resume=args.resume,
            csv=args.csv,
            patches=args.patches,
            tile_rows=args.tile_rows,
            pass_columns=None if args.pass_columns is None else tuple(args.pass_columns),
            scoring=scoring,
            execution=execution(args),
        )
    ]


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(
        "spark-submit jobs/score.py",
        build_parser(),
        lambda session, args: run_score_jobs(session, specs(args)),
        argv,
        spark=spark,
    )


if __name__ == "__main__":
    sys.exit(main())
