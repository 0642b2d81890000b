"""python jobs/score_beam.py: the Spark scoring job's inputs, rules and outputs on Apache Beam.

Arguments only: the flags and the spec are ``deepiqa_core.runs.beam_spec``'s, the job is
``deepiqa_core.beam.pipeline`` (its docstring tells the data flow).
Arguments this job does not take are Beam's pipeline options (``--runner``, ``--project`` …).
"""

from __future__ import annotations

import argparse
import sys

from deepiqa_core.beam.pipeline import run_score_beam_job
from deepiqa_core.exits import ERROR_CODES_HELP, EXIT_CODES_HELP, run_entry
from deepiqa_core.options import INPUTS_HELP
from deepiqa_core.runs.beam_spec import ScoreBeamSpec, add_score_beam_arguments

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
    add_score_beam_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args, beam_args = build_parser().parse_known_args(argv)
    return run_entry(
        PROG.split()[-1], lambda: run_score_beam_job(ScoreBeamSpec.from_args(args, beam_args))
    )


if __name__ == "__main__":
    sys.exit(main())
