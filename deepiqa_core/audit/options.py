"""The audit's spec and its own command-line flags, shared by ``spark-submit jobs/audit.py`` and
``deepiqa audit`` (both also take the score job's input and scoring flags). Spark-free: the job
is ``spark.audit.job.run_audit(spark, AuditSpec.from_args(args))``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from ..defaults import default_weights
from ..errors import UsageError
from ..options import InputSpec, ScoringOptions, input_spec, positive, scoring_options
from ..runs.score_spec import Execution
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


@dataclass(frozen=True)
class AuditSpec:
    """One audit run: which library, which model, where the state is, what alerts."""

    inputs: InputSpec
    weights: Path
    state: str
    full: bool = False
    alerts: tuple[AlertRule, ...] = ()
    threshold: float | None = None  # "share below": default the first share_below rule's
    score_direction: str | None = None  # overrides the weights' own
    version_column: str | None = None
    gallery: int = 12
    maps: int = 3
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    execution: Execution = field(default_factory=Execution)
    stop_before_publish: bool = False  # testing aid: SIGKILL at the worst moment

    def resolved_threshold(self) -> float | None:
        if self.threshold is not None:
            return self.threshold
        shares = [r.arg for r in self.alerts if r.metric == "share_below"]
        return shares[0] if shares else None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AuditSpec:
        """The spec the shared flags (``options``, ``audit.options``) ask for."""
        if args.input is None:
            raise UsageError("the audit needs a LIBRARY (folder, s3:// prefix, glob or manifest)")
        if args.max_error_rate != ScoringOptions.max_error_rate:
            raise UsageError(
                "--max-error-rate is the score job's; the audit alerts: --alert 'run_error_rate>X'"
            )
        if args.precision != "fp32":
            # Runs are compared with each other and carried forward night after night: bf16 moves
            # scores by up to ~0.5 and auto may resolve differently on each executor, so a change of
            # hardware would read as a change of quality.
            raise UsageError(
                f"--precision {args.precision}: the audit scores in fp32 only, so that runs on any "
                "hardware compare"
            )
        return cls(
            inputs=input_spec(args),
            weights=args.weights or default_weights(args.ref is not None),
            state=args.state,
            full=args.full,
            alerts=tuple(args.alert),
            threshold=args.threshold,
            score_direction=args.score_direction,
            version_column=args.version_column,
            gallery=args.gallery,
            maps=args.maps,
            scoring=scoring_options(args),
            execution=Execution(
                rows_per_partition=args.rows_per_partition, chunk_rows=args.chunk_rows
            ),
            stop_before_publish=args.stop_before_publish,
        )
