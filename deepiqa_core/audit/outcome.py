"""How an audit run ended, where a scheduler finds it without reading logs.

In Spark's cluster deploy mode ``spark-submit`` exits 1 for any failed application, so a
scheduler cannot tell an alert (exit 1) from a run that could not be done (exit 3) by the exit
code. The audit therefore also writes its outcome into the state:

* ``STATE/_OUTCOME`` (JSON, rewritten by every run that held the state): ``outcome``
  (``ok | alert | failed``), ``exit_code``, ``run_id``, ``finished_at``, the fired alerts with
  their status (new / firing since run R), the report's URI, or the error of a failed run;
* ``STATE/runs/R/_ALERT`` (JSON): present only in a run where an alert fired.

``deepiqa outcome STATE`` or ``python3 jobs/audit_outcome.py STATE`` reads ``_OUTCOME`` and
exits by it: 0 ok, 1 alert, 3 failed, or no outcome newer than ``--max-age-hours`` (the audit
did not run, or died before it could write one). This module needs only the standard library
(and boto3 for ``s3://``/``s3a://``) and ``deepiqa_core`` imports its parts lazily, so
``jobs/audit_outcome.py`` runs on a scheduler's worker from the release zip on PYTHONPATH,
without Spark or torch.
"""

from __future__ import annotations

import argparse
import calendar
import json
import sys
import time
from pathlib import Path

from ..errors import UsageError

OUTCOME = "_OUTCOME"
ALERT = "_ALERT"
EXIT_CODES = {"ok": 0, "alert": 1, "failed": 3}
STALE = 3  # no fresh outcome: the run did not happen or died without a word


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_outcome(summary: dict) -> dict:
    """``_OUTCOME`` of a published run."""
    fired = [
        {k: a.get(k) for k in ("rule", "value", "status", "since_run", "since")}
        for a in summary["alerts"]
        if a["fired"]
    ]
    return {
        "outcome": summary["outcome"],
        "exit_code": EXIT_CODES[summary["outcome"]],
        "run_id": summary["run_id"],
        "finished_at": summary.get("finished_at") or _now(),
        "alerts": fired,
        "report": summary.get("report"),
        "library": summary.get("library"),
    }


def failed_outcome(run_id: str | None, exc: BaseException) -> dict:
    """``_OUTCOME`` of a run that could not be done (nothing was published)."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return {
        "outcome": "failed",
        "exit_code": EXIT_CODES["failed"],
        "run_id": run_id,
        "finished_at": _now(),
        "error_code": getattr(exc, "code", None) or type(exc).__name__,
        "error": lines[0][:500],
        "alerts": [],
    }


def read_state_file(state: str, *parts: str) -> bytes | None:
    """A file of an audit state, or None when it is not there: a local path or ``file:`` URI,
    or ``s3://``/``s3a://`` (boto3: AWS_* variables, AWS_ENDPOINT_URL for S3-compatible
    stores). Shared by the outcome check and ``deepiqa report --publish``."""
    if state.startswith(("s3://", "s3a://")):
        import boto3

        bucket, _, prefix = state.split("://", 1)[1].partition("/")
        key = "/".join([prefix.rstrip("/"), *parts]) if prefix.strip("/") else "/".join(parts)
        client = boto3.client("s3")
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
    if "://" in state and not state.startswith("file:"):
        raise UsageError(f"{state}: a state on a path, file:, s3:// or s3a:// is read here")
    root = Path(
        "/" + state.removeprefix("file:").lstrip("/") if state.startswith("file:") else state
    )
    path = root.joinpath(*parts)
    return path.read_bytes() if path.is_file() else None


def _age_hours(stamp: str) -> float:
    then = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    return (time.time() - then) / 3600


def judge(text: str | None, max_age_hours: float | None) -> tuple[int, str]:
    """(exit code, one line for the scheduler's log) from ``_OUTCOME``'s text."""
    if not text:
        return STALE, "FAILED: no _OUTCOME: the audit has not run on this state"
    try:
        record = json.loads(text)
        outcome, finished = record["outcome"], record["finished_at"]
        age = _age_hours(finished)
    except (ValueError, KeyError, TypeError) as exc:
        return STALE, f"FAILED: _OUTCOME is unreadable ({exc})"
    if max_age_hours is not None and age > max_age_hours:
        return STALE, (
            f"FAILED: the last outcome is {age:.1f} h old (run {record.get('run_id')}, "
            f"{outcome}): tonight's audit did not finish"
        )
    where = f"run {record.get('run_id')} finished {finished}"
    if outcome == "ok":
        return 0, f"OK: {where}; report {record.get('report')}"
    if outcome == "alert":
        rules = "; ".join(
            f"{a['rule']} (value {a.get('value')}, "
            + ("new" if a.get("status") == "new" else f"firing since run {a.get('since_run')}")
            + ")"
            for a in record.get("alerts", [])
        )
        return 1, f"ALERT: {where}: {rules}; report {record.get('report')}"
    return 3, f"FAILED: {where}: {record.get('error_code')}: {record.get('error')}"


def build_parser(prog: str = "python3 jobs/audit_outcome.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Exit by the last audit's outcome (STATE/_OUTCOME): 0 ok, 1 an alert "
        "fired, 3 the run failed or no outcome is fresh enough. For schedulers that cannot "
        "see the audit's own exit code (Spark cluster mode).",
    )
    parser.add_argument("state", help="the audit's --state (path, file:, s3://, s3a://)")
    parser.add_argument(
        "--max-age-hours",
        type=float,
        default=None,
        help="an outcome older than this counts as 'did not run' (exit 3), e.g. 20 for a "
        "nightly audit checked after its run",
    )
    return parser


def check(state: str, max_age_hours: float | None) -> int:
    """Print the verdict on ``state``'s outcome; its exit code. A URI of another kind is a
    ``UsageError``; one that cannot be read (credentials, network) is a failed check."""
    try:
        data = read_state_file(state, OUTCOME)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - credentials, network: the run's state is unknown
        print(f"FAILED: could not read {state}/{OUTCOME}: {exc}")
        return STALE
    code, line = judge(data.decode() if data else None, max_age_hours)
    print(line)
    return code


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    args = build_parser(prog or "python3 jobs/audit_outcome.py").parse_args(argv)
    try:
        return check(args.state, args.max_age_hours)
    except UsageError as exc:
        print(f"{prog or 'audit_outcome'}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
