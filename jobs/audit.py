"""spark-submit jobs/audit.py: a scheduled quality audit of an image library.

Arguments only: the job is ``deepiqa_core.spark.audit.job`` (its docstring tells the flow).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deepiqa_core.audit.options import AUDIT_EPILOG_PARTS, AuditSpec, add_audit_arguments
from deepiqa_core.defaults import WEIGHTS_HELP
from deepiqa_core.exits import EXIT_CODES_HELP
from deepiqa_core.options import INPUTS_HELP, add_input_arguments, add_scoring_arguments
from deepiqa_core.spark.audit.job import run_audit
from deepiqa_core.spark.session import run_job

EPILOG = "\n\n".join([INPUTS_HELP, *AUDIT_EPILOG_PARTS, EXIT_CODES_HELP])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/audit.py",
        description="Audit an image library's quality: score what is new or changed since the "
        "last run, keep the history, write a report, exit 1 when an alert rule fires.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(p, input_help="LIBRARY: folder, glob, s3:// prefix or manifest")
    p.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    add_audit_arguments(p)
    add_scoring_arguments(p, error_rate=False)
    return p


def main(argv: list[str] | None = None, spark=None) -> int:
    return run_job(
        "spark-submit jobs/audit.py",
        build_parser(),
        lambda session, args: run_audit(session, AuditSpec.from_args(args)),
        argv,
        spark=spark,
    )


if __name__ == "__main__":
    sys.exit(main())
