"""What one audit run found: typed records, written as ``runs/R/summary.json`` (``to_json``).

The audit job builds an ``AuditSummary``; the report, ``_OUTCOME``, the printed lines and the
schedulers read what it writes. Earlier runs' ``summary.json`` files are read back as JSON (the
trend, alert streaks): they may predate a field, so those readers take dicts and tolerate gaps.
Lists whose rows are already JSON-shaped (alerts, changes, histogram, folders) stay plain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..runs.storage import local_path_of

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Distribution:
    """Scores of a set of rows (the library after the run, or the rows this run scored)."""

    images: int
    scored: int
    failed: int
    p10: float | None
    median: float | None
    p90: float | None
    mean: float | None
    share_below: float | None  # below the threshold; None without one
    error_rate: float | None  # None for no rows

    @classmethod
    def empty(cls) -> Distribution:
        """No rows (a run that scored nothing): what counting them would give, uncounted."""
        return cls(0, 0, 0, None, None, None, None, None, None)


@dataclass(frozen=True)
class Counts:
    """What the run found in the library and did with it."""

    library: int
    new: int
    changed: int
    unchanged: int
    removed: int
    retried: int
    rescored_model: int
    rescored_full: int
    scored: int
    failed: int

    @classmethod
    def of(cls, by_reason: dict[str, int], removed: int, run: Distribution) -> Counts:
        """From the plan's rows per reason, the removed rows and the scored rows' numbers."""
        return cls(
            library=sum(by_reason.values()),
            new=by_reason.get("new", 0),
            changed=by_reason.get("changed", 0),
            unchanged=by_reason.get("unchanged", 0),
            removed=removed,
            retried=by_reason.get("retry", 0),
            rescored_model=by_reason.get("model", 0),
            rescored_full=by_reason.get("full", 0),
            scored=run.images,
            failed=run.failed,
        )


@dataclass
class AuditSummary:
    """One audit run. ``report``/``report_bytes`` are filled in when the report is written."""

    run_id: str
    started_at: str
    finished_at: str
    seconds: float
    library: str
    ref: str | None
    state: str
    model: str
    model_sha256: str
    score_name: str
    score_direction: str
    score_range: list[float] | None
    threshold: float | None
    counts: Counts
    errors: dict[str, int]
    library_stats: Distribution
    run_stats: Distribution
    alerts: list[dict[str, Any]]  # rule, metric, value, fired, status, since_run, since
    changes: dict[str, Any]  # new/changed/removed/newly_failing/recovered: count + rows
    histogram: dict[str, Any]
    folders: list[dict[str, Any]]
    folders_truncated: bool
    folders_total: int
    arguments: dict[str, Any]
    alert_rules: list[str]
    versions: dict[str, str]
    report: str | None = None
    report_bytes: int | None = None
    schema_version: int = SCHEMA_VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # keys of a newer writer, kept as read

    @property
    def alerted(self) -> bool:
        return any(a["fired"] for a in self.alerts)

    @property
    def outcome(self) -> str:
        return "alert" if self.alerted else "ok"

    def to_json(self) -> dict[str, Any]:
        """The flat ``summary.json`` record (``alerted`` and ``outcome`` included)."""
        record = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        for name in ("counts", "library_stats", "run_stats"):
            record[name] = asdict(record[name])
        return {**self.extra, **record, "alerted": self.alerted, "outcome": self.outcome}

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> AuditSummary:
        """A ``summary.json`` record back (a missing required key: ``KeyError``)."""
        names = {f.name for f in fields(cls)} - {"extra"}
        typed: dict[str, Any] = {
            "counts": Counts(**record["counts"]),
            "library_stats": Distribution(**record["library_stats"]),
            "run_stats": Distribution(**record["run_stats"]),
        }
        optional = {"report", "report_bytes", "schema_version"}
        plain: dict[str, Any] = {k: record[k] for k in names - typed.keys() - optional}
        plain.update({k: record[k] for k in optional if k in record})
        extra = {k: v for k, v in record.items() if k not in names | {"alerted", "outcome"}}
        return cls(**typed, **plain, extra=extra)


def format_audit(summary: AuditSummary) -> str:
    """The run in a few lines, for the scheduler's log."""
    c, lib = summary.counts, summary.library_stats
    lines = [
        f"deepiqa audit {summary.run_id}: {summary.library} ({c.library} images)",
        f"  new {c.new}, changed {c.changed}, removed {c.removed}, unchanged "
        f"{c.unchanged}; scored {c.scored} ({c.failed} failed) in {summary.seconds} s",
        f"  library: median {lib.median}, p10 {lib.p10}, error rate {lib.error_rate}",
    ]
    for alert in summary.alerts:
        mark = "FIRED" if alert["fired"] else "ok"
        lines.append(f"  alert {alert['rule']}: {mark} (value {alert['value']})")
    for name in ("changed", "newly_failing"):
        for row in summary.changes[name]["rows"][:5]:
            detail = (
                f"{row['before']} -> {row['score']}" if name == "changed" else row["error_code"]
            )
            lines.append(f"  {name.replace('_', ' ')}: {row['uri']} ({detail})")
    report = summary.report or ""
    lines.append(f"  report: {local_path_of(report) or report}")
    return "\n".join(lines)
