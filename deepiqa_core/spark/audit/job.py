"""The nightly quality audit (``spark-submit jobs/audit.py``, ``deepiqa audit``).

One run over a library (any input the score job takes) with a state folder it owns
(``state``):

1. list the library with each image's version key and compare it with the previous snapshot
   (``library.classify``): only new, changed, retried images (or all, with ``--full`` or
   new weights) are scored; unchanged rows are carried forward, vanished ones marked removed;
2. score that delta with the score job itself (``run_score_job`` on a staged manifest: the same
   listing, pairing, error codes, chunks and outputs);
3. write this run's history partition and the new snapshot, compute the numbers
   (``numbers``, ``stats``), judge the alert rules (``deepiqa_core.audit.alerts``) and write
   ``summary.json`` and ``report.html``;
4. publish (``AuditState.publish``: ``_LATEST`` written last).

Exit codes: 0 published, no alert; 1 published and an alert fired; 2 usage; 3 not done
(nothing published, the previous state untouched; another run's live lease included). The
same outcome is written to ``STATE/_OUTCOME`` for schedulers that cannot see the exit code
(``deepiqa_core.audit.outcome``).
"""

from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from ...audit.alerts import check_direction, mark_streaks
from ...audit.options import AuditSpec
from ...audit.outcome import failed_outcome, run_outcome
from ...audit.summary import AuditSummary, format_audit
from ...batch import OUTPUT_COLUMNS
from ...errors import AuditStateError
from ...exits import ExitCode
from ...options import InputSpec
from ...outputs import check_separate
from ...runs.score_spec import ScoreJobSpec
from ...runs.storage import local_path_of
from ..inputs import first_line
from ..score_job import SCORE_COLUMNS, run_score_job
from ..scoring import BroadcastModel
from ..session import driver_file
from . import stats
from .library import classify, library_frame
from .numbers import Numbers, summarise
from .report import TREND_RUNS, write_run_report
from .state import HISTORY, REBUILD_HINT, AuditState, new_run_id

REASONS = ("new", "changed", "model", "retry", "full", "unchanged")
HISTORY_COLUMNS = ["id", "uri", "ref_uri", "version", "event", "reason", "scored_at"] + [
    c for c in SCORE_COLUMNS if c not in ("id", "uri", "ref_uri")
]


def run_audit(spark: SparkSession, spec: AuditSpec) -> int:
    """Run, publish and print one audit; the exit code (see the module docstring)."""
    summary = audit(spark, replace(spec, weights=driver_file(spec.weights)))
    print(format_audit(summary))
    return ExitCode.THRESHOLD if summary.alerted else ExitCode.OK


def audit(spark: SparkSession, spec: AuditSpec) -> AuditSummary:
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
        state.write_outcome(run_outcome(summary.to_json()))
    finally:
        state.close()
    return summary


def previous_snapshot(state: AuditState, run_id: str, full: bool) -> tuple[DataFrame | None, int]:
    """The last run's snapshot and its rows; one that cannot be read (a truncated file) is an
    ``AuditStateError`` naming it, or with ``full`` rebuilt from the history: each image's
    latest event, in run order."""
    uri = state.snapshot_uri()
    try:
        if uri is None:
            return None, 0
        frame = state.read_dataset(uri, run_id, "previous")
        # the count reads every file's footer now: a truncated one fails here, named
        return frame, frame.count() if frame is not None else 0
    except Exception as exc:  # noqa: BLE001 - Spark's analysis/IO errors
        if not full:
            raise AuditStateError(
                f"the audit's snapshot {uri} is unreadable ({first_line(exc)}); {REBUILD_HINT}"
            ) from exc
    history_uri = state.path(HISTORY)
    if not state.storage.list(history_uri):
        return None, 0
    try:
        history = state.read_dataset(history_uri, run_id, "previous_history")
        if history is None:
            return None, 0
        latest = Window.partitionBy("id").orderBy(F.col("run_id").desc())
        rebuilt = (
            history.withColumn("_n", F.row_number().over(latest))
            .where(F.col("_n") == 1)
            .withColumn("removed", F.col("event") == "removed")
            .drop("_n", "run_date")
        )
        return rebuilt, rebuilt.count()
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
) -> AuditSummary:
    """Plan, score the delta, write history and snapshot, count, and write the report."""
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
    previous, previous_rows = previous_snapshot(state, run_id, spec.full)
    planned = classify(library, previous, model.sha256, spec.full)
    bytes_cols: list[str] = [c for c in ("image", "ref_image") if c in planned.columns]
    planned.drop(*bytes_cols).write.parquet(work("plan"))
    plan = spark.read.parquet(work("plan"))
    by_reason = {r["reason"]: int(r["count"]) for r in plan.groupBy("reason").count().collect()}
    to_score = _to_score(by_reason)
    scored = None
    if to_score:
        scored = _score_delta(spark, spec, state, run_id, library, plan, bytes_cols, started_at)
    history, snapshot = _history_and_snapshot(
        spark, spec, state, run_id, plan, previous, scored, by_reason, previous_rows
    )
    earlier = state.summaries(TREND_RUNS - 1)  # oldest first: the trend, and the drops' base
    # a quiet night (no history rows; Parquet footers only) skips the run's numbers
    changes = stats.changes(
        history, previous, direction != "lower_better", empty=history.count() == 0
    )
    # one pass over the library: the numbers and the report read it from memory (spilled to
    # disk where it does not fit), not from the snapshot's files once per statistic
    snapshot = snapshot.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        numbers = Numbers(snapshot, history, by_reason, changes)
        summary, error_rows = summarise(
            spark, spec, model, state, direction, numbers, earlier, run_id, started_at
        )
        summary.seconds = round(time.perf_counter() - started, 2)
        mark_streaks(summary.alerts, earlier, run_id, started_at)
        write_run_report(spec, state, summary, snapshot, library, error_rows, earlier)
    finally:
        snapshot.unpersist()
    return summary


def _to_score(by_reason: dict[str, int]) -> int:
    """How many of the plan's rows this run scores: every reason but ``unchanged``."""
    return sum(n for reason, n in by_reason.items() if reason != "unchanged")


def _score_delta(
    spark: SparkSession,
    spec: AuditSpec,
    state: AuditState,
    run_id: str,
    library: DataFrame,
    plan: DataFrame,
    bytes_cols: list[str],
    started_at: str,
) -> DataFrame:
    """Score what is new or changed with the score job itself; its history rows."""
    work = lambda *p: state.work(run_id, *p)  # noqa: E731
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
    scored_at = F.to_timestamp(F.lit(started_at), "yyyy-MM-dd'T'HH:mm:ss'Z'")
    return scores.select(
        *HISTORY_COLUMNS[:4],
        F.lit("scored").alias("event"),
        "reason",
        scored_at.alias("scored_at"),
        *HISTORY_COLUMNS[7:],
        *_extras(scores),
    )


def _history_and_snapshot(
    spark: SparkSession,
    spec: AuditSpec,
    state: AuditState,
    run_id: str,
    plan: DataFrame,
    previous: DataFrame | None,
    scored: DataFrame | None,
    by_reason: dict[str, int],
    previous_rows: int,
) -> tuple[DataFrame, DataFrame]:
    """This run's history rows (scored and removed) and the library after it, both written to
    the run's scratch and read back from there."""
    work = lambda *p: state.work(run_id, *p)  # noqa: E731
    gone = None
    if previous is not None:
        active = previous.where(~F.col("removed"))
        gone = active.join(plan.select("id"), on="id", how="left_anti").drop("run_id", "removed")
        gone = gone.withColumn("event", F.lit("removed")).withColumn("reason", F.lit("removed"))
    history = _union([f for f in (scored, gone) if f is not None])
    if history is None:
        history = spark.createDataFrame([], _empty_schema())
    to_score = _to_score(by_reason)
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
    bound = sum(by_reason.values()) + previous_rows
    files = max(1, math.ceil(bound / spec.execution.rows_per_file))  # rows: at most this
    snapshot.repartition(files).write.parquet(work("snapshot"))
    return history, spark.read.parquet(work("snapshot"))


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
