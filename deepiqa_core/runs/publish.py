"""Publishing a run's output atomically, on any ``Storage`` (the run protocol, engine-free).

A run writes into a private work folder (``Run.work``) and only publishing makes it visible:

* **rename** (``rename_run``: a local disk, HDFS -- directory rename is atomic). The work
  folder is ``.<name>.staging-<key>`` beside the target; when complete (``_COMPLETE`` last) it
  replaces the target: old target renamed to ``.<name>.old-<key>``, staging renamed to the
  target, old deleted. The result is read at ``OUT/scores`` etc.
* **pointer** (``pointer_run``: object stores, where "rename" is a copy). The run writes
  ``OUT/runs/<stamp>-<key>/`` and is published by writing the small file ``OUT/_LATEST`` last
  (one PUT: atomic), which names the run folder; readers follow it (``published_uri``). Older
  runs are deleted after the pointer moves. With ``export``, the work folder lives elsewhere
  (the Spark job's staging on the default file system when Spark cannot write ``s3://``) and is
  copied to the target when complete.

``key`` is the run's fingerprint (inputs, weights, options): ``resume`` finds the unfinished
work folder of the same run and continues it (a run that cannot resume passes a fresh key and
``keep_failed=False``). Crashes are repaired by the next run for the same target (``recover``):
a finished but unpublished rename is published, a half-swapped target is put back, and work
folders of dead runs (``leases``: an owner record the run renews) are deleted. One run per
target at a time. Only outputs deepiqa made are ever replaced (``_DEEPIQA_OUTPUT``).

The engines choose the storage and call these: ``spark.publish.publish`` (Hadoop file systems,
boto3 for ``s3://``) and ``beam.publish.publish`` (local files, Beam's ``FileSystems``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import OutputExistsError, UsageError
from ..outputs import MARKER, is_deepiqa_output, marker_text
from .leases import Lease, alive, check_free
from .storage import Storage, join, parent_and_name

COMPLETE_MARKER = "_COMPLETE"
POINTER = "_LATEST"
RUNS = "runs"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Run:
    """One run's private work folder (Spark-writable) and how it will be published."""

    work: str
    storage: Storage
    resumed: bool
    mode: str  # "rename" | "pointer"
    target: str
    published: str = ""  # where readers find the result, once published
    exported: bool = False  # copied to s3:// by an executor-side writer when complete

    @property
    def run_id(self) -> str:
        return (
            self.published.rstrip("/").rsplit("/", 1)[-1]
            if self.mode == "pointer"
            else (self.work.rstrip("/").rsplit("-", 1)[-1])
        )

    def path(self, *parts: str) -> str:
        return join(self.work, *parts)

    def local(self, uri: str) -> str:
        """A ``file:`` URI as a plain path, for code that writes with Python's own I/O."""
        if uri.startswith("file:"):
            return "/" + uri.removeprefix("file:").lstrip("/")
        if "://" in uri or uri.startswith(("hdfs:", "dbfs:")):
            raise UsageError(f"{uri} is not on a local (or mounted) file system")
        return uri


def _check_target(storage: Storage, target: str, overwrite: bool) -> None:
    if not storage.exists(target) or not storage.list(target):
        return
    if not overwrite:
        raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
    if not is_deepiqa_output(storage, target):
        raise UsageError(
            f"refusing to replace {target}: it is not a deepiqa output (no {MARKER}); "
            "choose another --output, or remove it yourself"
        )


def published_uri(storage: Storage, target: str) -> str | None:
    """Where the latest published result of ``target`` is (pointer or rename layout)."""
    pointer = storage.read_text(join(target, POINTER))
    if pointer:
        return join(target, json.loads(pointer)["run"])
    return target if storage.exists(join(target, COMPLETE_MARKER)) else None


# --- rename -------------------------------------------------------------------------------


def _siblings(storage: Storage, target: str, kind: str) -> list[str]:
    parent, name = parent_and_name(target)
    prefix = f".{name}.{kind}-"
    return [join(parent, n) for n in storage.list(parent) if n.startswith(prefix)]


def recover(storage: Storage, target: str, keep: str | None = None) -> None:
    """Repair what crashed runs left beside ``target`` (rename layout); ``keep``: a work
    folder being resumed."""
    if not storage.exists(target):
        stagings = _siblings(storage, target, "staging")
        complete = [s for s in stagings if storage.exists(join(s, COMPLETE_MARKER))]
        olds = _siblings(storage, target, "old")
        if complete:
            newest = max(complete, key=lambda s: storage.modified(join(s, COMPLETE_MARKER)))
            storage.rename(newest, target)
        elif olds:
            storage.rename(max(olds, key=storage.modified), target)
    for folder in _siblings(storage, target, "old"):  # superseded once a result is in place
        storage.delete(folder)
    for folder in _siblings(storage, target, "staging"):
        if folder != keep and not alive(storage, folder):
            storage.delete(folder)


@contextmanager
def _held(storage: Storage, work: str, keep_failed: bool) -> Iterator[None]:
    """Hold the work folder's lease while the run writes it and let go however the run ends.
    A failed run's work stays for ``--resume`` when ``keep_failed`` and it wrote something
    (an empty folder never stays: a usage error once left ``.OUT.staging-*`` beside OUT)."""
    lease = Lease(storage, work).acquire(settle=0)
    try:
        yield
    except BaseException:
        lease.release()
        if not keep_failed or not storage.list(work):
            storage.delete(work)
        raise
    lease.release()


@contextmanager
def rename_run(
    storage: Storage,
    target: str,
    overwrite: bool,
    resume: bool,
    key: str,
    kind: str,
    keep_failed: bool = True,
) -> Iterator[Run]:
    """Rename publishing (see the module docstring); ``kind`` names the output in its marker."""
    parent, name = parent_and_name(target)
    work = join(parent, f".{name}.staging-{key}")
    resumable = resume and storage.exists(work) and not storage.exists(join(work, COMPLETE_MARKER))
    if resumable:
        check_free(storage, work)
    recover(storage, target, keep=work if resumable else None)
    _check_target(storage, target, overwrite)
    if not resumable and storage.exists(work):
        storage.delete(work)
    storage.mkdirs(work)
    run = Run(work, storage, resumable, "rename", target, published=target)
    with _held(storage, work, keep_failed):
        yield run
        storage.write_text(join(work, MARKER), marker_text(kind))
    storage.write_text(join(work, COMPLETE_MARKER), _now() + "\n")
    old = join(parent, f".{name}.old-{key}")
    if storage.exists(target):
        storage.rename(target, old)
    storage.rename(work, target)
    if storage.exists(old):
        storage.delete(old)


# --- pointer ------------------------------------------------------------------------------


def _runs(storage: Storage, target: str) -> list[str]:
    return storage.list(join(target, RUNS))


def _pointer_cleanup(storage: Storage, target: str, keep: set[str]) -> None:
    for name in _runs(storage, target):
        folder = join(target, RUNS, name)
        if name not in keep and not alive(storage, folder):
            storage.delete(folder)


def _new_name(key: str) -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{key}"


def _claim(
    storage: Storage, target: str, overwrite: bool, resumable: bool, kind: str
) -> str | None:
    """Check ``target`` may be written (pointer layout); returns the published run's name.

    A target that has anything in it must be a deepiqa output; one with a published result needs
    --overwrite (or --resume of its unfinished successor). An empty or new target is marked as
    deepiqa's at once, so a crashed first run's leftovers are recognised later."""
    pointer = storage.read_text(join(target, POINTER))
    current = json.loads(pointer)["run"].split("/", 1)[1] if pointer else None
    if storage.exists(target) and storage.list(target):
        if not is_deepiqa_output(storage, target):
            raise UsageError(
                f"refusing to write into {target}: it is not a deepiqa output (no {MARKER})"
            )
        if current and not overwrite and not resumable:
            raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
    else:
        storage.write_text(join(target, MARKER), marker_text(kind))
    return current


@contextmanager
def pointer_run(
    storage: Storage,
    target: str,
    overwrite: bool,
    resume: bool,
    key: str,
    kind: str,
    work_storage: Storage | None = None,
    work_root: str | None = None,
    export: Callable[[Run], None] | None = None,
    keep_failed: bool = True,
) -> Iterator[Run]:
    """Pointer publishing; with ``export``, the work folder lives under ``work_root`` on
    ``work_storage`` and is copied to the target when complete."""
    work_storage = work_storage or storage
    if export is not None:
        work = join(work_root or "", key)
        unfinished = work_storage.exists(work) and not work_storage.exists(
            join(work, COMPLETE_MARKER)
        )
        resumable = resume and unfinished
        name = _new_name(key)
    else:
        open_runs = [
            n
            for n in _runs(storage, target)
            if n.endswith(f"-{key}") and not storage.exists(join(target, RUNS, n, COMPLETE_MARKER))
        ]
        resumable = resume and bool(open_runs)
        name = max(open_runs) if resumable else _new_name(key)
        work = join(target, RUNS, name)
    if resumable:
        check_free(work_storage, work)
    current = _claim(storage, target, overwrite, resumable, kind)
    _pointer_cleanup(storage, target, keep={n for n in (current, name) if n})
    if not resumable and work_storage.exists(work):
        work_storage.delete(work)
    work_storage.mkdirs(work)
    run_folder = join(target, RUNS, name)
    run = Run(work, work_storage, resumable, "pointer", target, run_folder, export is not None)
    with _held(work_storage, work, keep_failed):
        yield run
    if export is not None:
        export(run)
    storage.write_text(join(run_folder, MARKER), marker_text(kind))
    storage.write_text(join(run_folder, COMPLETE_MARKER), _now() + "\n")
    record = {"run": f"{RUNS}/{name}", "published": _now()}
    storage.write_text(join(target, POINTER), json.dumps(record) + "\n")
    _pointer_cleanup(storage, target, keep={name})
    if export is not None:
        work_storage.delete(work)


def fingerprint(record: dict[str, Any]) -> str:
    """A short, stable key for what a run is (the same inputs, weights and options)."""
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
