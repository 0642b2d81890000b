"""The nightly quality audit (``spark-submit jobs/audit.py``, ``deepiqa audit``).

One run over a library (any input the score job takes) with a state folder it owns
(``audit_state``):

1. list the library with each image's version key and compare it with the previous snapshot
   (``audit_library.classify``): only new, changed, retried images (or all, with ``--full`` or
   new weights) are scored; unchanged rows are carried forward, vanished ones marked removed;
2. score that delta with the score job itself (``run_score_job`` on a staged manifest: the same
   listing, pairing, error codes, chunks and outputs);
3. write this run's history partition and the new snapshot, compute the numbers
   (``audit_stats``), judge the alert rules (``deepiqa_core.audit.alerts``) and write
   ``summary.json`` and ``report.html``;
4. publish (``AuditState.publish``: ``_LATEST`` written last).

Exit codes: 0 published, no alert; 1 published and an alert fired; 2 usage; 3 not done
(nothing published, the previous state untouched; another run's live lease included). The
same outcome is written to ``STATE/_OUTCOME`` for schedulers that cannot see the exit code
(``deepiqa_core.audit.outcome``).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ..audit.alerts import AlertRule, check_direction, evaluate, mark_streaks
from ..audit.outcome import failed_outcome, run_outcome
from ..batch import OUTPUT_COLUMNS
from ..errors import AuditStateError
from ..exits import ExitCode
from ..options import InputSpec, ScoringOptions
from ..outputs import check_separate
from ..runs.summary import versions
from . import audit_stats as stats
from .audit_library import classify, library_frame
from .audit_report import TREND_RUNS, write_report
from .audit_state import HISTORY, REBUILD_HINT, AuditState, new_run_id
from .inputs import first_line
from .score_job import SCORE_COLUMNS, Execution, ScoreJobSpec, run_score_job
from .scoring import BroadcastModel
from .session import driver_file
from .storage import local_path_of

REASONS = ("new", "changed", "model", "retry", "full", "unchanged")
HISTORY_COLUMNS = ["id", "uri", "ref_uri", "version", "event", "reason", "scored_at"] + [
    c for c in SCORE_COLUMNS if c not in ("id", "uri", "ref_uri")
]


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


def run_audit(spark: SparkSession, spec: AuditSpec) -> int:
    """Run, publish and print one audit; the exit code (see the module docstring)."""
    summary = audit(spark, replace(spec, weights=driver_file(spec.weights)))
    print(format_audit(summary))
    return ExitCode.THRESHOLD if summary["alerted"] else ExitCode.OK


def audit(spark: SparkSession, spec: AuditSpec) -> dict:
    started_at, started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter()
    local = local_path_of(spec.state)
    if local is not None:
        check_separate(Path(local), [spec.inputs.source, spec.inputs.ref, spec.weights])
    model = BroadcastModel.create(spark, spec.weights)
    direction = spec.score_direction or model.meta.score_direction
    check_direction(spec.alerts, direction)
    state = AuditState(spark, spec.state)
    state.open(rebuild=spec.full)
    try:
        run_id = new_run_id()
        try:
            summary = _run(spark, spec, model, state, run_id, direction, started_at, started)
            if spec.stop_before_publish:
                os.kill(os.getpid(), signal.SIGKILL)
            state.publish(run_id, started_at[:10], model.sha256)
        except BaseException as exc:
            state.write_outcome(failed_outcome(run_id, exc))
            raise
        state.write_outcome(run_outcome(summary))
    finally:
        state.close()
    return summary


def previous_snapshot(state: AuditState, run_id: str, full: bool) -> DataFrame | None:
    """The last run's snapshot; one that cannot be read (a truncated file) is an
    ``AuditStateError`` naming it, or with ``full`` rebuilt from the history: each image's
    latest event, in run order."""
    uri = state.snapshot_uri()
    try:
        if uri is None:
            return None
        frame = state.read_dataset(uri, run_id, "previous")
        if frame is not None:
            frame.count()  # reads every file's footer now: a truncated one fails here, named
        return frame
    except Exception as exc:  # noqa: BLE001 - Spark's analysis/IO errors
        if not full:
            raise AuditStateError(
                f"the audit's snapshot {uri} is unreadable ({first_line(exc)}); {REBUILD_HINT}"
            ) from exc
    history_uri = state.path(HISTORY)
    if not state.storage.list(history_uri):
        return None
    try:
        history = state.read_dataset(history_uri, run_id, "previous_history")
        if history is None:
            return None
        latest = Window.partitionBy("id").orderBy(F.col("run_id").desc())
        return (
            history.withColumn("_n", F.row_number().over(latest))
            .where(F.col("_n") == 1)
            .withColumn("removed", F.col("event") == "removed")
            .drop("_n", "run_date")
        )
    except Exception as exc:  # noqa: BLE001
        raise AuditStateError(f"the audit's history {history_uri} is unreadable ({exc})") from exc


def _run(
    spark: SparkSession,
    spec: AuditSpec,
    model: BroadcastModel,
    state: AuditState,
    run_id: str,
    direction: str,
    started_at: str,
    started: float,
) -> dict:
    work = lambda *p: state.work(run_id, *p)  # noqa: E731
    library = library_frame(
        spark,
        spec.inputs,
        model.full_reference,
        model.meta.variant,
        spec.version_column,
        work("stage"),
        spec.execution.listing_batch,
    )
    previous = previous_snapshot(state, run_id, spec.full)
    planned = classify(library, previous, model.sha256, spec.full)
    bytes_cols = [c for c in ("image", "ref_image") if c in planned.columns]
    planned.drop(*bytes_cols).write.parquet(work("plan"))
    plan = spark.read.parquet(work("plan"))
    by_reason = {r["reason"]: int(r["count"]) for r in plan.groupBy("reason").count().collect()}
    to_score = sum(n for reason, n in by_reason.items() if reason != "unchanged")
    scored_at = F.to_timestamp(F.lit(started_at), "yyyy-MM-dd'T'HH:mm:ss'Z'")

    scored = None
    if to_score:
        delta = plan.where(F.col("reason") != "unchanged")
        if bytes_cols:
            delta = library.join(delta.select("id", "reason"), on="id", how="inner")
        delta.write.parquet(work("delta.parquet"))
        inputs = InputSpec(
            work("delta.parquet"),
            bytes_column="image" if "image" in bytes_cols else None,
            ref_bytes_column="ref_image" if "ref_image" in bytes_cols else None,
        )
        job = ScoreJobSpec(
            inputs, spec.weights, work("scored"), scoring=spec.scoring, execution=spec.execution
        )
        run_score_job(spark, job)
        scores = spark.read.parquet(work("scored", "scores"))
        scored = scores.select(
            *HISTORY_COLUMNS[:4],
            F.lit("scored").alias("event"),
            "reason",
            scored_at.alias("scored_at"),
            *HISTORY_COLUMNS[7:],
            *_extras(scores),
        )

    gone = None
    if previous is not None:
        active = previous.where(~F.col("removed"))
        gone = active.join(plan.select("id"), on="id", how="left_anti").drop("run_id", "removed")
        gone = gone.withColumn("event", F.lit("removed")).withColumn("reason", F.lit("removed"))
    history = _union([f for f in (scored, gone) if f is not None])
    if history is None:
        history = spark.createDataFrame([], _empty_schema())
    files = max(1, math.ceil(to_score / spec.execution.rows_per_file))
    history.repartition(files).write.parquet(work("history"))
    history = spark.read.parquet(work("history"))

    parts = [history.withColumn("removed", F.col("event") == "removed")]
    if previous is not None:
        unchanged = plan.where(F.col("reason") == "unchanged").select("id")
        parts.append(previous.where(~F.col("removed")).join(unchanged, on="id", how="left_semi"))
        still_gone = previous.where(F.col("removed")).join(plan.select("id"), "id", "left_anti")
        parts.append(still_gone)
    fresh = parts[0].withColumn("run_id", F.lit(run_id))
    snapshot = _union_all(fresh, parts[1:])
    bound = sum(by_reason.values()) + (previous.count() if previous is not None else 0)
    files = max(1, math.ceil(bound / spec.execution.rows_per_file))  # rows: at most this
    snapshot.repartition(files).write.parquet(work("snapshot"))
    snapshot = spark.read.parquet(work("snapshot"))

    earlier = state.summaries(TREND_RUNS - 1)  # oldest first: the trend, and the drops' base
    changes = stats.changes(history, previous, direction != "lower_better")
    summary, error_rows = _numbers(
        spec, model, state, direction, snapshot, history, by_reason, earlier, changes
    )
    mark_streaks(summary["alerts"], earlier, run_id, started_at)
    summary.update(
        run_id=run_id,
        started_at=started_at,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        seconds=round(time.perf_counter() - started, 2),
        arguments=_arguments(spec),
        alert_rules=[r.text for r in spec.alerts],
        versions=versions(spark=spark.version),
    )
    write_report(spec, state, run_id, summary, snapshot, library, error_rows, earlier)
    return summary


def _arguments(spec: AuditSpec) -> dict:
    """The run's arguments as the report shows them: the rules as written, the threshold in
    use (the first share_below rule's when none was given)."""
    arguments = json.loads(json.dumps(asdict(replace(spec, alerts=())), default=str))
    arguments.update(alerts=[r.text for r in spec.alerts], threshold=spec.resolved_threshold())
    arguments.pop("stop_before_publish", None)
    return arguments


def _extras(scores: DataFrame) -> list[str]:
    known = set(HISTORY_COLUMNS)
    return [c for c in scores.columns if c not in known]


def _union(frames: list[DataFrame]) -> DataFrame | None:
    return _union_all(frames[0], frames[1:]) if frames else None


def _union_all(first: DataFrame, rest: list[DataFrame]) -> DataFrame:
    for frame in rest:
        first = first.unionByName(frame, allowMissingColumns=True)
    return first


def _empty_schema() -> str:
    types = dict(
        id="string",
        uri="string",
        ref_uri="string",
        version="string",
        event="string",
        reason="string",
        scored_at="timestamp",
    )
    types.update(OUTPUT_COLUMNS)
    return ", ".join(f"{c} {types[c]}" for c in HISTORY_COLUMNS)


def _numbers(
    spec: AuditSpec,
    model: BroadcastModel,
    state: AuditState,
    direction: str,
    snapshot: DataFrame,
    history: DataFrame,
    by_reason: dict[str, int],
    earlier: list[dict],
    changes: stats.Changes,
) -> tuple[dict, list[dict]]:
    """summary.json's numbers (counts, library and run statistics, histogram, folders, alerts)
    and a few of this run's failed rows for the report."""
    threshold = spec.resolved_threshold()
    active = snapshot.where(~F.col("removed"))
    run_rows = history.where(F.col("event") == "scored")
    library_stats = stats.score_stats(active, threshold)
    run_stats = stats.score_stats(run_rows, threshold)
    removed = history.where(F.col("event") == "removed").count()
    run_errors, error_rows = stats.errors(run_rows)
    counts = {
        "library": sum(by_reason.values()),
        "new": by_reason.get("new", 0),
        "changed": by_reason.get("changed", 0),
        "unchanged": by_reason.get("unchanged", 0),
        "removed": removed,
        "retried": by_reason.get("retry", 0),
        "rescored_model": by_reason.get("model", 0),
        "rescored_full": by_reason.get("full", 0),
        "scored": run_stats["images"],
        "failed": run_stats["failed"],
    }
    score_range = model.meta.score_range
    low, high = score_range if score_range else stats.score_bounds(active)
    folders, truncated = stats.folders(active, spec.inputs.source, threshold)
    before = earlier[-1]["library_stats"] if earlier else {}

    def drop(name: str) -> float | None:
        now, then = library_stats.get(name), before.get(name)
        if now is None or then is None:
            return None
        return round(then - now if direction != "lower_better" else now - then, 6)

    values = {
        "p10": library_stats["p10"],
        "p50": library_stats["median"],
        "median": library_stats["median"],
        "p90": library_stats["p90"],
        "mean": library_stats["mean"],
        "median_drop": drop("median"),
        "p10_drop": drop("p10"),
        "mean_drop": drop("mean"),
        "error_rate": library_stats["error_rate"],
        "run_error_rate": run_stats["error_rate"],
        "failed": counts["failed"],
        "new": counts["new"],
        "changed": counts["changed"],
        "removed": counts["removed"],
        "library": counts["library"],
    }

    def value_of(rule: AlertRule) -> float | None:
        if rule.arg is None:  # the metrics without an argument
            return values[rule.metric]
        if rule.metric in ("share_below", "share_above"):
            return stats.share(active, "<" if rule.metric == "share_below" else ">", rule.arg)
        if rule.metric == "worse":
            return changes.worse(rule.arg)
        return changes.new_below(rule.arg)

    alerts = evaluate(spec.alerts, value_of)
    summary = {
        "library": spec.inputs.source,
        "ref": spec.inputs.ref,
        "state": state.uri,
        "model": model.meta.variant,
        "model_sha256": model.sha256,
        "score_name": model.meta.score_name,
        "score_direction": direction,
        "score_range": score_range,
        "threshold": threshold,
        "counts": counts,
        "errors": run_errors,
        "library_stats": library_stats,
        "run_stats": run_stats,
        "alerts": alerts,
        "alerted": any(a["fired"] for a in alerts),
        "outcome": "alert" if any(a["fired"] for a in alerts) else "ok",
        "changes": changes.lists(),
        "histogram": stats.histogram(active, run_rows if run_stats["images"] else None, low, high),
        "folders": folders,
        "folders_truncated": truncated,
        "folders_total": stats.folder_count(active) if truncated else len(folders),
    }
    return summary, error_rows


def format_audit(summary: dict) -> str:
    """The run in a few lines, for the scheduler's log."""
    c, lib = summary["counts"], summary["library_stats"]
    lines = [
        f"deepiqa audit {summary['run_id']}: {summary['library']} ({c['library']} images)",
        f"  new {c['new']}, changed {c['changed']}, removed {c['removed']}, unchanged "
        f"{c['unchanged']}; scored {c['scored']} ({c['failed']} failed) in {summary['seconds']} s",
        f"  library: median {lib['median']}, p10 {lib['p10']}, error rate {lib['error_rate']}",
    ]
    for alert in summary["alerts"]:
        mark = "FIRED" if alert["fired"] else "ok"
        lines.append(f"  alert {alert['rule']}: {mark} (value {alert['value']})")
    for name in ("changed", "newly_failing"):
        for row in summary["changes"][name]["rows"][:5]:
            detail = (
                f"{row['before']} -> {row['score']}" if name == "changed" else row["error_code"]
            )
            lines.append(f"  {name.replace('_', ' ')}: {row['uri']} ({detail})")
    report = summary["report"]
    lines.append(f"  report: {local_path_of(report) or report}")
    return "\n".join(lines)


def audit_spec(args) -> AuditSpec:
    """The spec the shared flags (``options``, ``audit.options``) ask for."""
    from ..defaults import default_weights
    from ..exits import UsageError
    from ..options import input_spec, scoring_options

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
    return AuditSpec(
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
        execution=Execution(rows_per_partition=args.rows_per_partition, chunk_rows=args.chunk_rows),
        stop_before_publish=args.stop_before_publish,
    )
