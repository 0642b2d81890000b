"""The audit's state folder (``--state``): history, snapshots, per-run reports, one pointer.

Layout (``STATE`` is any URI the cluster's Hadoop file system layer writes: a path, ``file:``,
``hdfs:``, ``s3a:``, ``gs:``, ``abfss:``, ``dbfs:``; or ``s3://`` where the cluster has no S3
connector, see below)::

    _DEEPIQA_OUTPUT                    marks the folder as an audit state deepiqa owns
    _LATEST                            JSON: the latest published run, its snapshot, the
                                       committed runs (written last: the commit point)
    history/run_date=D/run_id=R/       Parquet, append-only: one row per image scored (or
                                       removed) in run R
    snapshots/R/                       Parquet: the library after run R, one row per image
                                       ever seen (latest result; ``removed`` flags the gone)
    runs/R/summary.json, report.html   what run R found (``_ALERT`` too when an alert fired)
    _OUTCOME                           JSON: how the last run that held the state ended
                                       (ok | alert | failed), for schedulers (``outcome``)
    _work/R/                           scratch of the run in progress
    _OWNER.json                        the run in progress: its lease (``leases``: host, pid,
                                       start, last renewal), one run at a time

A run writes only ``_work/R`` until it is complete, then moves its history partition, snapshot
and report into place and writes ``_LATEST``. A run killed at any point publishes nothing: the
next run deletes what is not named in ``_LATEST`` (uncommitted history partitions included) and
redoes its delta. The last ``KEEP_SNAPSHOTS`` snapshots are kept (earlier ones are the history's).

**``s3://`` without an S3 connector** (local mode, plain clusters, the score job's ``s3://``
rule): the small files (``_LATEST``, ``_OUTCOME``, the lease, reports) go through boto3; Spark's
work lives on the default file system (``publish.staging_folder``: one folder per state, cleared
by the next run like ``_work``); the previous snapshot is imported from S3 by executor-side
readers (``export.import_dataset``) and the new history partition and snapshot are exported by
executor-side writers (``export.export_dataset``) before ``_LATEST`` is written (one PUT, the
commit). The layout on S3 is the same, so Spark (S3A), DuckDB or pyarrow read it as usual.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame

from ...audit.outcome import OUTCOME, failed_outcome
from ...errors import AuditStateError, UsageError
from ...outputs import MARKER, marker_text
from ...runs.leases import OWNER, Lease
from ...runs.storage import Storage, join
from ..export import export_dataset, import_dataset
from ..publish import staging_folder
from ..storage import HadoopStorage, storage_for

LATEST = "_LATEST"
RUNNING = OWNER  # the lease of the run in progress
HISTORY = "history"
SNAPSHOTS = "snapshots"
RUNS = "runs"
WORK = "_work"
KEEP_SNAPSHOTS = 2
REBUILD_HINT = "run the audit once with --full to rebuild the state from its history"


def new_run_id() -> str:
    """Sortable by time, unique enough for one state (one run at a time)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{time.time_ns() % 10**6:06d}"


@dataclass
class Latest:
    """What ``_LATEST`` says: the published run and every committed run, oldest first."""

    run_id: str | None = None
    snapshot: str | None = None
    model_sha256: str | None = None
    runs: list[str] = field(default_factory=list)
    partitions: dict[str, str] = field(default_factory=dict)  # run id -> history partition

    @classmethod
    def parse(cls, text: str | None, uri: str = LATEST) -> Latest:
        """``_LATEST``'s text (None: no run yet); an ``AuditStateError`` naming ``uri`` when it
        is not what deepiqa writes (truncated, edited)."""
        if not text:
            return cls()
        try:
            latest = cls(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise AuditStateError(f"{uri} is unreadable ({exc}); {REBUILD_HINT}") from exc
        if not isinstance(latest.runs, list) or not isinstance(latest.partitions, dict):
            raise AuditStateError(f"{uri} is unreadable (runs/partitions); {REBUILD_HINT}")
        return latest


class AuditState:
    """One audit state folder, opened for a run: locked, repaired, ready to publish."""

    def __init__(self, spark: Any, uri: str):
        storage, spark_writes = storage_for(spark, uri, "--state")
        self.spark = spark
        self.storage: Storage = storage
        self.exported = not spark_writes  # s3:// through boto3: datasets copied in and out
        self.scratch: Storage
        if isinstance(storage, HadoopStorage):
            self.uri = storage.qualify(uri)
            self.scratch, self.scratch_root = storage, join(self.uri, WORK)
        else:
            self.uri = uri.rstrip("/")
            self.scratch, self.scratch_root = staging_folder(spark, self.uri)
        self.latest = Latest()
        self.lease: Lease | None = None

    def path(self, *parts: str) -> str:
        return join(self.uri, *parts)

    # --- opening -------------------------------------------------------------------------

    def open(self, rebuild: bool = False) -> None:
        """Claim the state for this run (usage error if it is not an audit state;
        ``StateBusyError``, exit 3, while another run's lease is live), then drop what an
        unfinished run left (a dead lease's run included, wherever its host was). An
        unreadable ``_LATEST`` is an ``AuditStateError``, or with ``rebuild`` (``--full``)
        rebuilt from the history."""
        s = self.storage
        if s.exists(self.uri) and s.list(self.uri):
            marker = s.read_text(self.path(MARKER)) or ""
            if '"audit"' not in marker:
                raise UsageError(
                    f"--state {self.uri} is not a deepiqa audit state (no {MARKER} of kind "
                    "audit); choose an empty or new folder"
                )
        else:
            s.mkdirs(self.uri)
            s.write_text(self.path(MARKER), marker_text("audit"))
        self.lease = Lease(s, self.uri).acquire()
        try:
            self._recover(rebuild)
        except BaseException as exc:
            self.write_outcome(failed_outcome(None, exc))
            self.close()  # a state this run could not open stays free for the next one
            raise

    def _recover(self, rebuild: bool) -> None:
        s = self.storage
        if not s.exists(self.path(LATEST)) and s.exists(self.path(LATEST + ".new")):
            s.rename(self.path(LATEST + ".new"), self.path(LATEST))  # killed mid-commit
        try:
            self.latest = Latest.parse(s.read_text(self.path(LATEST)), self.path(LATEST))
        except AuditStateError:
            if not rebuild:
                raise
            self.latest = self._latest_from_history()
        committed = set(self.latest.runs)
        s.delete(self.path(WORK))
        self.scratch.delete(self.scratch_root)
        s.delete(self.path(LATEST + ".new"))
        for folder in (RUNS, SNAPSHOTS):
            for name in s.list(self.path(folder)):
                if name not in committed:
                    s.delete(self.path(folder, name))
        kept = set(self.latest.partitions.values())
        for day in s.list(self.path(HISTORY)):
            for part in s.list(self.path(HISTORY, day)):
                if f"{day}/{part}" not in kept:
                    s.delete(self.path(HISTORY, day, part))
            if not s.list(self.path(HISTORY, day)):
                s.delete(self.path(HISTORY, day))

    def _latest_from_history(self) -> Latest:
        """``_LATEST`` as the history's partitions say: every run that wrote one, in order;
        the newest run's snapshot if it is still there (else none: ``--full`` rescoring)."""
        s = self.storage
        partitions = {
            part.removeprefix("run_id="): f"{day}/{part}"
            for day in s.list(self.path(HISTORY))
            for part in s.list(self.path(HISTORY, day))
            if part.startswith("run_id=")
        }
        runs = sorted(partitions)
        last = runs[-1] if runs else None
        snapshot = f"{SNAPSHOTS}/{last}" if last and s.exists(self.path(SNAPSHOTS, last)) else None
        print(f"deepiqa: {self.path(LATEST)} rebuilt from the history ({len(runs)} runs)")
        return Latest(last, snapshot, None, runs, partitions)

    def write_outcome(self, record: dict[str, Any]) -> None:
        """``_OUTCOME`` (while this run holds the lease); best effort when the run failed."""
        try:
            self.storage.write_text(self.path(OUTCOME), json.dumps(record, indent=1) + "\n")
        except Exception as exc:  # noqa: BLE001 - the run's own error is the one to report
            print(f"deepiqa: warning: could not write {self.path(OUTCOME)} ({exc})")

    def close(self) -> None:
        if self.lease is not None:
            self.lease.release()
            self.lease = None

    # --- a run ---------------------------------------------------------------------------

    def work(self, run_id: str, *parts: str) -> str:
        """A path in this run's scratch (Spark-writable; ``self.scratch`` writes small files)."""
        return join(self.scratch_root, run_id, *parts)

    def snapshot_uri(self) -> str | None:
        return self.path(self.latest.snapshot) if self.latest.snapshot else None

    def read_dataset(self, uri: str, run_id: str, name: str) -> DataFrame | None:
        """A Parquet dataset of the state as Spark reads it: in place, or for an ``s3://``
        state imported into the run's scratch folder ``name`` first (None: no rows there)."""
        if self.exported:
            return import_dataset(self.spark, uri, self.work(run_id, name))
        frame: DataFrame = self.spark.read.parquet(uri)
        return frame

    def summaries(self, limit: int = 90) -> list[dict[str, Any]]:
        """The last ``limit`` committed runs' summary.json, oldest first."""
        found = []
        for run_id in self.latest.runs[-limit:]:
            uri = self.path(RUNS, run_id, "summary.json")
            text = self.storage.read_text(uri)
            try:
                summary = json.loads(text) if text else None
            except ValueError as exc:  # the trend loses one point; the run goes on
                print(f"deepiqa: warning: {uri} is unreadable ({exc}); left out of the trend")
                continue
            if isinstance(summary, dict):
                found.append(summary)
        return found

    def publish(self, run_id: str, run_date: str, model_sha256: str) -> None:
        """Move the run's history partition, snapshot and report into place, then commit."""
        s = self.storage
        partition = f"run_date={run_date}/run_id={run_id}"
        if self.exported:  # copies under names _LATEST does not list yet: invisible until then
            export_dataset(self.spark, self.work(run_id, "history"), self.path(HISTORY, partition))
            export_dataset(self.spark, self.work(run_id, "snapshot"), self.path(SNAPSHOTS, run_id))
            report = self.work(run_id, "report")
            for name in self.scratch.list(report):
                text = self.scratch.read_text(join(report, name)) or ""
                s.write_text(self.path(RUNS, run_id, name), text)
        else:
            s.mkdirs(self.path(HISTORY, f"run_date={run_date}"))
            s.rename(self.work(run_id, "history"), self.path(HISTORY, partition))
            s.mkdirs(self.path(SNAPSHOTS))
            s.rename(self.work(run_id, "snapshot"), self.path(SNAPSHOTS, run_id))
            s.mkdirs(self.path(RUNS))
            s.rename(self.work(run_id, "report"), self.path(RUNS, run_id))
        runs = [*self.latest.runs, run_id]
        latest = Latest(
            run_id,
            f"{SNAPSHOTS}/{run_id}",
            model_sha256,
            runs,
            {**self.latest.partitions, run_id: partition},
        )
        text = json.dumps(latest.__dict__, indent=1) + "\n"
        if s.atomic_rename:  # write aside, then swap: a reader never sees half a pointer
            s.write_text(self.path(LATEST + ".new"), text)
            s.delete(self.path(LATEST))
            s.rename(self.path(LATEST + ".new"), self.path(LATEST))
        else:  # object stores: one PUT is atomic
            s.write_text(self.path(LATEST), text)
        self.latest = latest
        for old in runs[:-KEEP_SNAPSHOTS]:
            s.delete(self.path(SNAPSHOTS, old))
        self.scratch.delete(self.scratch_root)  # one run at a time: the scratch is all this run's
