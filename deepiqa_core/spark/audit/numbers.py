"""An audit run's numbers (``AuditSummary``) from its snapshot, history and changes.

Counts, library and run statistics, the histogram, folders and the alert rules' values: the
audit's numbers step (``job._run``), kept apart from the orchestration so each reads alone.
A quiet night (nothing scored or removed) skips the run statistics' Spark jobs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from ...audit.alerts import AlertRule, evaluate
from ...audit.options import AuditSpec
from ...audit.summary import AuditSummary, Counts, Distribution
from ...runs.summary import versions
from ..scoring import BroadcastModel
from . import stats
from .state import AuditState


@dataclass(frozen=True)
class Numbers:
    """What the run's numbers are counted from."""

    snapshot: DataFrame  # the library after the run (removed rows flagged)
    history: DataFrame  # this run's rows: scored and removed
    by_reason: dict[str, int]  # the plan's rows per reason
    changes: stats.Changes

    @property
    def quiet(self) -> bool:
        """The history has no rows: nothing scored, nothing removed (``Changes.empty``)."""
        return self.changes.empty


def summarise(
    spark: SparkSession,
    spec: AuditSpec,
    model: BroadcastModel,
    state: AuditState,
    direction: str,
    n: Numbers,
    earlier: list[dict[str, Any]],
    run_id: str,
    started_at: str,
) -> tuple[AuditSummary, list[dict[str, Any]]]:
    """The run's summary (counts, library and run statistics, histogram, folders, alerts;
    ``seconds`` is the caller's) and a few failed rows for the report."""
    threshold = spec.resolved_threshold()
    active = n.snapshot.where(~F.col("removed"))
    run_rows = n.history.where(F.col("event") == "scored")
    library_stats = stats.distribution(active, threshold)
    run_stats = Distribution.empty() if n.quiet else stats.distribution(run_rows, threshold)
    removed = 0 if n.quiet else n.history.where(F.col("event") == "removed").count()
    run_errors, error_rows = ({}, []) if n.quiet else stats.errors(run_rows)
    counts = Counts.of(n.by_reason, removed, run_stats)
    score_range = model.meta.score_range
    low, high = score_range if score_range else stats.score_bounds(active)
    folders, truncated = stats.folders(active, spec.inputs.source, threshold)
    values = _alert_values(active, library_stats, run_stats, counts, n.changes, earlier, direction)
    summary = AuditSummary(
        run_id=run_id,
        started_at=started_at,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        seconds=0.0,
        library=spec.inputs.source,
        ref=spec.inputs.ref,
        state=state.uri,
        model=model.meta.variant,
        model_sha256=model.sha256,
        score_name=model.meta.score_name,
        score_direction=direction,
        score_range=list(score_range) if score_range else None,
        threshold=threshold,
        counts=counts,
        errors=run_errors,
        library_stats=library_stats,
        run_stats=run_stats,
        alerts=evaluate(spec.alerts, values),
        changes=n.changes.lists(),
        histogram=stats.histogram(active, run_rows if run_stats.images else None, low, high),
        folders=folders,
        folders_truncated=truncated,
        folders_total=stats.folder_count(active) if truncated else len(folders),
        arguments=_arguments(spec),
        alert_rules=[r.text for r in spec.alerts],
        versions=versions(spark=spark.version),
    )
    return summary, error_rows


def _alert_values(
    active: DataFrame,
    library: Distribution,
    run: Distribution,
    counts: Counts,
    changes: stats.Changes,
    earlier: list[dict[str, Any]],
    direction: str,
) -> Callable[[AlertRule], float | None]:
    """Each alert metric's value for this run (``alerts.METRICS``); drops against the previous
    run's library statistics (+ = worse in the score's direction)."""
    before = earlier[-1].get("library_stats", {}) if earlier else {}

    def drop(name: str) -> float | None:
        now: float | None = getattr(library, name)
        then: float | None = before.get(name)
        if now is None or then is None:
            return None
        return round(then - now if direction != "lower_better" else now - then, 6)

    values = {
        "p10": library.p10,
        "p50": library.median,
        "median": library.median,
        "p90": library.p90,
        "mean": library.mean,
        "median_drop": drop("median"),
        "p10_drop": drop("p10"),
        "mean_drop": drop("mean"),
        "error_rate": library.error_rate,
        "run_error_rate": run.error_rate,
        "failed": counts.failed,
        "new": counts.new,
        "changed": counts.changed,
        "removed": counts.removed,
        "library": counts.library,
    }

    def value_of(rule: AlertRule) -> float | None:
        if rule.arg is None:  # the metrics without an argument
            return values[rule.metric]
        if rule.metric in ("share_below", "share_above"):
            return stats.share(active, "<" if rule.metric == "share_below" else ">", rule.arg)
        if rule.metric == "worse":
            return changes.worse(rule.arg)
        return changes.new_below(rule.arg)

    return value_of


def _arguments(spec: AuditSpec) -> dict[str, Any]:
    """The run's arguments as the report shows them: the rules as written, the threshold in
    use (the first share_below rule's when none was given)."""
    arguments: dict[str, Any] = json.loads(
        json.dumps(asdict(replace(spec, alerts=())), default=str)
    )
    arguments.update(alerts=[r.text for r in spec.alerts], threshold=spec.resolved_threshold())
    arguments.pop("stop_before_publish", None)
    return arguments
