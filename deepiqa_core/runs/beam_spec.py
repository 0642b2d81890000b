"""What a Beam scoring run is asked to do (Beam-free, Spark-free): ``ScoreBeamSpec`` and
``BeamExecution``, their flags and the rule from arguments to the spec (``jobs/score_beam.py``;
the job is ``beam.pipeline.run_score_beam``)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..defaults import default_weights
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


@dataclass(frozen=True)
class BeamExecution:
    """How the work is spread over the runner's workers."""

    min_batch_rows: int = 8  # BatchElements' bounds: rows per RunInference batch
    max_batch_rows: int = 64  # image bytes are large: like the Spark job's Arrow batches
    torch_threads: int | None = None  # per worker process; default: torch's (all cores)
    rows_per_file: int = 500_000  # rows per output Parquet file (~100 MB)


@dataclass(frozen=True)
class ScoreBeamSpec:
    """One Beam scoring run: what, with which weights, how, where, and Beam's own options."""

    inputs: InputSpec
    weights: Path
    output: str
    overwrite: bool = False
    pass_columns: tuple[str, ...] | None = None  # manifest columns kept; None: all
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    execution: BeamExecution = field(default_factory=BeamExecution)
    pipeline_args: tuple[str, ...] = ()

    @classmethod
    def from_args(cls, args: argparse.Namespace, beam_args: list[str]) -> ScoreBeamSpec:
        """The spec the flags ask for; ``beam_args``: what the parser left for Beam."""
        if args.input is None or args.output is None:
            raise UsageError("INPUT and --output are required")
        if args.min_batch_rows > args.max_batch_rows:
            raise UsageError("--min-batch-rows is more than --max-batch-rows")
        return cls(
            inputs=input_spec(args),
            weights=args.weights or default_weights(args.ref is not None),
            output=args.output,
            overwrite=args.overwrite,
            pass_columns=None if args.pass_columns is None else tuple(args.pass_columns),
            scoring=scoring_options(args),
            execution=BeamExecution(
                min_batch_rows=args.min_batch_rows,
                max_batch_rows=args.max_batch_rows,
                torch_threads=args.torch_threads,
                rows_per_file=args.rows_per_file,
            ),
            pipeline_args=tuple(beam_args),
        )


def add_score_beam_arguments(p: argparse.ArgumentParser) -> None:
    """The Beam job's own flags (everything else goes to Beam)."""
    add_output_arguments(p, "folder or URI to publish to (required)")
    add_scoring_arguments(p)
    defaults = BeamExecution
    g = p.add_argument_group("execution")
    g.add_argument(
        "--min-batch-rows",
        type=positive,
        default=defaults.min_batch_rows,
        help="fewest rows BatchElements puts in one RunInference batch",
    )
    g.add_argument(
        "--max-batch-rows",
        type=positive,
        default=defaults.max_batch_rows,
        help="most rows in one batch (their patches go through the network together)",
    )
    g.add_argument("--torch-threads", type=positive, help="per worker process (default: torch's)")
    g.add_argument("--rows-per-file", type=positive, default=defaults.rows_per_file)
