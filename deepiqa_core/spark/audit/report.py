"""An audit run's ``summary.json`` and ``report.html``, written into the run's work folder.

The driver reads only what the report shows: the worst and best ``gallery`` images (for
thumbnails), the worst ``maps`` images (scored again here with patch outputs for their quality
maps), a few failed rows and the earlier runs' summaries (the trend).
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from ...audit.options import AuditSpec
from ...audit.outcome import ALERT
from ...audit.pictures import quality_maps
from ...audit.report import render_report, thumbnail
from ...audit.summary import AuditSummary
from ...runs.storage import join
from ...sources import read_bytes
from . import stats
from .state import RUNS, AuditState

TREND_RUNS = 90
CHANGED_SHOWN = 8  # thumbnails of the worst drops in "What changed"


def _with_bytes(rows: list[dict[str, Any]], library: DataFrame) -> list[dict[str, Any]]:
    """Each row with ``data``: its image bytes (from the library's bytes column, or read)."""
    if "image" in library.columns and rows:
        ids = [r["id"] for r in rows]
        found = {
            r["id"]: r["image"]
            for r in library.where(F.col("id").isin(ids)).select("id", "image").collect()
        }
        return [{**r, "data": found.get(r["id"])} for r in rows]
    out = []
    for row in rows:
        try:
            data = read_bytes(row["uri"])
        except Exception:  # noqa: BLE001 - gone since it was scored: the gallery says so
            data = None
        out.append({**row, "data": data})
    return out


def _gallery_items(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows read by ``_with_bytes`` as gallery items: their fields (``uri`` falls back to the
    id), a thumbnail, or a note why there is none."""
    items = []
    for row in rows:
        thumb = thumbnail(row["data"]) if row["data"] else None
        fields = {k: v for k, v in row.items() if k != "data"}
        note = None if thumb else "could not be read or decoded now"
        items.append({**fields, "uri": row["uri"] or row["id"], "thumbnail": thumb, "note": note})
    return items


def write_run_report(
    spec: AuditSpec,
    state: AuditState,
    summary: AuditSummary,
    snapshot: DataFrame,
    library: DataFrame,
    error_rows: list[dict[str, Any]],
    earlier: list[dict[str, Any]],
) -> None:
    """Set the report's location and size in ``summary`` and write ``summary.json``, the report
    and (when an alert fired) ``_ALERT`` for publishing (``earlier``: the previous runs'
    summaries, oldest first, for the trend)."""
    active = snapshot.where(~F.col("removed"))
    higher_better = summary.score_direction != "lower_better"
    shown = max(1, min(spec.gallery, summary.library_stats.scored // 2))  # worst != best
    worst, best = stats.extremes(active, shown, higher_better)
    worst, best = _with_bytes(worst, library), _with_bytes(best, library)
    summary.report = state.path(RUNS, summary.run_id, "report.html")
    record = summary.to_json()
    extras = {
        "worst": _gallery_items(worst),
        "best": _gallery_items(best),
        "maps": quality_maps(
            spec.weights,
            [r for r in worst[: spec.maps] if r["data"]],
            spec.scoring,
            summary.score_range,
        ),
        "error_rows": error_rows,
        "trend": [_trend_point(s) for s in [*earlier, record]],
        "changed": _gallery_items(
            _with_bytes(summary.changes["changed"]["rows"][:CHANGED_SHOWN], library)
        ),
    }
    html = render_report(record, extras)
    summary.report_bytes = len(html.encode())
    folder = state.work(summary.run_id, "report")
    state.scratch.write_text(
        join(folder, "summary.json"), json.dumps(summary.to_json(), indent=2) + "\n"
    )
    state.scratch.write_text(join(folder, "report.html"), html)
    if summary.alerted:
        fired = [a for a in summary.alerts if a["fired"]]
        state.scratch.write_text(join(folder, ALERT), json.dumps(fired, indent=1) + "\n")


def _trend_point(summary: dict[str, Any]) -> dict[str, Any]:
    lib = summary.get("library_stats", {})
    return {
        "run_id": summary.get("run_id"),
        "finished_at": summary.get("finished_at"),
        "median": lib.get("median"),
        "p10": lib.get("p10"),
        "share_below": lib.get("share_below"),
        "failed": summary.get("counts", {}).get("failed"),
        "library": summary.get("counts", {}).get("library"),
    }
