"""What a scoring run is asked to do (Spark-free): ``ScoreJobSpec`` and ``Execution``, their flags
and the one rule from arguments to specs, shared by ``jobs/score.py``, the audit and tests.

The Spark job (``spark.score_job.run_score_jobs``) takes the specs; nothing here imports Spark.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..defaults import DEFAULT_WEIGHTS, SAMPLES, default_weights
from ..errors import UsageError
from ..options import (
    InputSpec,
    ScoringOptions,
    add_output_arguments,
    add_scoring_arguments,
    input_spec,
    positive,
    scoring_options,
)
from .storage import join

DEFAULT_OUTPUT = Path("output/score-default")
OUTPUT_HELP = """\
output (--output OUT: a path, or a URI the cluster writes: hdfs://, s3a://, gs://, abfss://,
dbfs:/; s3:// also without an S3 connector, through boto3). A path on a local or HDFS file
system is written to a staging folder and renamed into place; on object stores each run is
OUT/runs/<run>/ and OUT/_LATEST (written last) names the published one. In the result:
  scores/       Parquet, exactly one row per input: id, uri, ref_uri, score, num_patches,
                in_range, width, height, bytes, model, model_sha256, error_code,
                error_message, then the manifest's own columns (--pass-columns)
  scores_csv/   with --csv
  patches/      with --patches: id, patch_index, y, x, quality, weight per patch
  summary.json  counts, errors by code, percentiles, timings, arguments, versions
  _COMPLETE     written last; _DEEPIQA_OUTPUT marks a folder --overwrite may replace"""


@dataclass(frozen=True)
class Execution:
    """How the work is spread over Spark."""

    partitions: int | None = None  # per chunk; default: chunk rows / rows_per_partition
    rows_per_partition: int = 1000  # fewer, longer tasks: the driver tracks every task
    arrow_batch_rows: int = 64  # image bytes are large: far fewer than Spark's 10,000
    torch_threads: int | None = None  # default: spark.task.cpus
    chunk_rows: int = 250_000  # rows committed together: what --resume can skip
    rows_per_file: int = 500_000  # rows per output Parquet file (~100 MB)
    listing_batch: int = 100_000  # listed paths the driver holds before writing them out
    fail_once_marker: str | None = None  # testing aid, see ScoreBatches

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Execution:
        return cls(
            partitions=args.partitions,
            rows_per_partition=args.rows_per_partition,
            arrow_batch_rows=args.arrow_batch_rows,
            torch_threads=args.torch_threads,
            chunk_rows=args.chunk_rows,
            rows_per_file=args.rows_per_file,
            fail_once_marker=args.fail_once_marker,
        )


@dataclass(frozen=True)
class ScoreJobSpec:
    """One scoring run: what, with which weights, how, and where the results go."""

    inputs: InputSpec
    weights: Path
    output: str | Path  # a path or URI the cluster can write, or s3://
    overwrite: bool = False
    resume: bool = False
    csv: bool = False
    patches: bool = False
    tile_rows: int | None = None
    pass_columns: tuple[str, ...] | None = None  # manifest columns kept; None: all
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    execution: Execution = field(default_factory=Execution)

    @classmethod
    def all_from_args(cls, args: argparse.Namespace) -> list[ScoreJobSpec]:
        """The runs the arguments ask for: the embedded default (two), or one."""
        scoring = scoring_options(args)
        if args.input is None:
            if args.weights or args.ref:
                raise UsageError("--weights/--ref need an INPUT")
            return default_specs(args.output, args.overwrite, scoring, Execution.from_args(args))
        if args.output is None:
            raise UsageError("--output is required with an INPUT")
        return [
            cls(
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
                execution=Execution.from_args(args),
            )
        ]


def default_specs(
    output: str | Path | None, overwrite: bool, scoring: ScoringOptions, execution: Execution
) -> list[ScoreJobSpec]:
    """No INPUT: NR over the sample photos, FR over the sample pairs, the shipped weights.

    The default output folder is refreshed on every default run (it only ever holds this).
    """
    out = str(output or DEFAULT_OUTPUT)  # a string: URIs must keep their "//"
    replace_it = overwrite or output is None
    nr = InputSpec(str(SAMPLES / "nr"))
    fr = InputSpec(str(SAMPLES / "fr" / "distorted"), ref=str(SAMPLES / "fr" / "reference"))
    return [
        ScoreJobSpec(
            inputs,
            DEFAULT_WEIGHTS[kind],
            join(out, kind),
            scoring=scoring,
            execution=execution,
            overwrite=replace_it,
        )
        for kind, inputs in (("nr", nr), ("fr", fr))
    ]


def add_score_job_arguments(p: argparse.ArgumentParser) -> None:
    """The score job's flags (``ScoreJobSpec.all_from_args`` reads them)."""
    add_output_arguments(p, f"folder or URI to publish to (default {DEFAULT_OUTPUT}/...)")
    p.add_argument("--resume", action="store_true", help="continue this run after a crash")
    p.add_argument("--csv", action="store_true", help="also write the scores as CSV")
    p.add_argument("--patches", action="store_true", help="also write the per-patch table")
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
