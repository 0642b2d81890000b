"""The audit's own command-line flags, shared by ``spark-submit jobs/audit.py`` and
``deepiqa audit`` (both also take the score job's input and scoring flags)."""

from __future__ import annotations

import argparse

from ..options import positive
from ..weights.format import SCORE_DIRECTIONS
from .alerts import ALERTS_HELP, AlertRule, parse_rule

STATE_HELP = """\
state (--state STATE: a folder or URI the audit owns; any file system Spark writes, or s3://
through boto3 where Spark has no S3 connector):
  _LATEST                      JSON: the latest run, its snapshot, every committed run
  history/run_date=D/run_id=R/ Parquet, append-only: a row per image scored or removed in R:
                               id, uri, ref_uri, version, event (scored|removed), reason
                               (new|changed|model|retry|full|removed), scored_at, score,
                               num_patches, in_range, width, height, bytes, model,
                               model_sha256, error_code, error_message, manifest columns
  snapshots/R/                 Parquet: the library after run R (latest row per image,
                               removed = true for images gone), + run_id of that row
  runs/R/report.html           the report people read; runs/R/summary.json for machines
A killed run publishes nothing; the next run redoes only its delta."""

AUDIT_EXAMPLES = """\
examples:
  spark-submit jobs/audit.py s3a://media/library/ --state s3a://media/deepiqa/audit \\
      --alert "error_rate>0.01" --alert "median_drop>5" --alert "worse(15)>0"
  deepiqa audit photos/ --state audit-state/                 # one machine, local Spark
  deepiqa audit s3://media/library/ --state s3://media/deepiqa/audit   # no S3A needed
  deepiqa audit manifest.parquet --state audit/ --version-column etag --full"""


def _rule(text: str) -> AlertRule:
    try:
        return parse_rule(text)
    except ValueError as exc:  # UsageError: shown by argparse as a usage error (exit 2)
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state",
        required=True,
        help="folder or URI the audit owns: history, snapshots, reports (see below)",
    )
    parser.add_argument("--full", action="store_true", help="rescore every image, changed or not")
    g = parser.add_argument_group("alerts and report")
    g.add_argument(
        "--alert",
        action="append",
        type=_rule,
        default=[],
        metavar="RULE",
        help="e.g. 'p10<40', 'share_below(35)>0.05', 'error_rate>0.01', 'median_drop>5'",
    )
    g.add_argument(
        "--threshold",
        type=float,
        help="score under which an image counts as poor in the report (default: the first "
        "share_below rule's)",
    )
    g.add_argument(
        "--score-direction",
        choices=[d for d in SCORE_DIRECTIONS if d != "unknown"],
        help="which way is better, for weights that do not say (default: the weights')",
    )
    g.add_argument("--gallery", type=positive, default=12, help="worst/best images shown")
    g.add_argument("--maps", type=int, default=3, help="quality maps of the worst images")
    g.add_argument(
        "--version-column",
        help="manifest column that changes when an image changes (default: hash the content)",
    )
    g.add_argument("--rows-per-partition", type=positive, default=1000)
    g.add_argument("--chunk-rows", type=positive, default=250_000)
    g.add_argument("--stop-before-publish", action="store_true", help=argparse.SUPPRESS)


AUDIT_EPILOG_PARTS = (STATE_HELP, ALERTS_HELP, AUDIT_EXAMPLES)
