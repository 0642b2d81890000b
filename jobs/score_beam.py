"""python jobs/score_beam.py: the Spark scoring job's inputs, rules and outputs on Apache Beam.

Arguments only: the job is ``deepiqa_core.beam.pipeline`` (its docstring tells the data flow).
Arguments this job does not take are Beam's pipeline options (``--runner``, ``--project`` …).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepiqa_core.beam.pipeline import BeamExecution, ScoreBeamSpec, run_score_beam_job
from deepiqa_core.defaults import WEIGHTS_HELP, default_weights
from deepiqa_core.errors import UsageError
from deepiqa_core.exits import ERROR_CODES_HELP, EXIT_CODES_HELP, run_entry
from deepiqa_core.options import (
    INPUTS_HELP,
    add_input_arguments,
    add_scoring_arguments,
    input_spec,
    positive,
    scoring_options,
)

PROG = "python jobs/score_beam.py"
EPILOG = f"""\
{INPUTS_HELP}
  Manifests may also hold gs:// (or other) uris that Beam's FileSystems reads (with
  apache-beam[gcp] ...); folders and prefixes are listed from local disk and s3:// only.

output (--output OUT: a local path, or a URI Beam's FileSystems writes: gs://, s3:// ...).
A local path is written to a staging folder beside it and renamed into place; a remote one
gets OUT/runs/<run>/ and OUT/_LATEST (written last) names the published run. In the result:
  scores/       Parquet, exactly one row per input: id, uri, ref_uri, score, num_patches,
                in_range, width, height, bytes, model, model_sha256, error_code,
                error_message, then the manifest's own columns (--pass-columns)
  summary.json  counts, errors by code, percentiles, timings, arguments, versions
  _COMPLETE     written last; _DEEPIQA_OUTPUT marks a folder --overwrite may replace

Beam options: everything this job does not take goes to Beam (--runner DirectRunner (default),
PrismRunner, DataflowRunner, FlinkRunner ...; --direct_num_workers, --project, --region,
--temp_location, --flink_master ...). See infra/beam/ for runner recipes.

{ERROR_CODES_HELP}

{EXIT_CODES_HELP}

examples:
  python jobs/score_beam.py photos/ --output out/beam
  python jobs/score_beam.py distorted/ --ref references/ --weights fr.safetensors --output out/fr \\
      --direct_num_workers 2 --direct_running_mode multi_processing
  python jobs/score_beam.py manifest.parquet --output gs://media/deepiqa/nightly \\
      --runner DataflowRunner --project P --region europe-west4 --temp_location gs://media/tmp
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Score images with DeepIQA on Apache Beam: the same inputs, error codes "
        "and outputs as spark-submit jobs/score.py.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,  # a prefix of ours must never swallow one of Beam's options
    )
    add_input_arguments(p, input_help="folder, glob, file, s3:// prefix or manifest (see below)")
    p.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    p.add_argument("--output", help="folder or URI to publish to (required)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier deepiqa output")
    p.add_argument(
        "--pass-columns",
        nargs="*",
        metavar="COLUMN",
        help="manifest columns copied to the score rows (default: all; none: no columns)",
    )
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
    return p


def spec(args: argparse.Namespace, beam_args: list[str]) -> ScoreBeamSpec:
    if args.input is None or args.output is None:
        raise UsageError("INPUT and --output are required")
    if args.min_batch_rows > args.max_batch_rows:
        raise UsageError("--min-batch-rows is more than --max-batch-rows")
    return ScoreBeamSpec(
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


def main(argv: list[str] | None = None) -> int:
    args, beam_args = build_parser().parse_known_args(argv)
    return run_entry(PROG.split()[-1], lambda: run_score_beam_job(spec(args, beam_args)))


if __name__ == "__main__":
    sys.exit(main())
