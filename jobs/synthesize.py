"""spark-submit jobs/synthesize.py: make a KADID-style synthetic training set on Spark.

Photos (a folder, glob or s3:// prefix; default: the bundled sample photos) x distortion types
x levels: each (photo, type) group is distorted and weak-labelled on an executor, and the driver
writes the manifest (``deepiqa_core.spark.synthesize_job``). Output (a folder on storage every
executor can write to, published atomically):

  OUT/references/<photo>.png, OUT/images/<photo>__<type>__<level>.png, OUT/manifest.parquet

The same seed gives the same pixels and labels as `deepiqa synthesize` on one machine.
"""

from __future__ import annotations

import argparse
import sys

from deepiqa_core.exits import EXIT_CODES_HELP
from deepiqa_core.spark.session import run_job
from deepiqa_core.spark.synthesize_job import run_synthesis_job
from deepiqa_core.training.options import SynthesisSpec, add_synthesis_job_arguments


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/synthesize.py",
        description=__doc__.split("\n\n")[0],
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_synthesis_job_arguments(p)
    return p


def main(argv: list[str] | None = None, spark=None) -> int:
    def body(session, args) -> int:
        run_synthesis_job(session, SynthesisSpec.from_args(args))
        return 0

    return run_job("spark-submit jobs/synthesize.py", build_parser(), body, argv, spark=spark)


if __name__ == "__main__":
    sys.exit(main())
