"""Where a Beam run writes, and how it becomes visible: the output rules of the Spark job.

* **Local outputs** (a path or ``file://``): the run writes ``.<name>.staging-<run>`` beside
  ``OUT``; when it is complete (``_DEEPIQA_OUTPUT``, then ``_COMPLETE`` last) an earlier ``OUT``
  is renamed away, the staging folder renamed to ``OUT``, the old one deleted. A failed run
  deletes its staging folder; ``OUT`` is untouched until the end.
* **Remote outputs** (``gs://``, ``s3://`` … through Beam's ``FileSystems``, where "rename" is a
  copy): the run writes ``OUT/runs/<time>-<run>/`` and is published by writing the small object
  ``OUT/_LATEST`` last, ``{"run": "runs/<time>-<run>"}``: the Spark job's pointer layout, so
  ``deepiqa_core.spark.publish.published_uri`` and the README's pandas/DuckDB recipes read both.
  Earlier runs, and unfinished ones left by crashes, are deleted after the pointer moves.

Either way ``--overwrite`` replaces only a deepiqa output, and an output that exists needs it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from ..exits import OutputExistsError, UsageError
from ..outputs import MARKER, check_replaceable, marker_kind, marker_text
from ..sources import local_path

COMPLETE = "_COMPLETE"
POINTER = "_LATEST"
RUNS = "runs"
KIND = "score_beam"


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file") or len(urlparse(uri).scheme) == 1


def join(base: str, *parts: str) -> str:
    """A child path or URI (FileSystems.join keeps a URI's ``//``)."""
    return FileSystems.join(base.rstrip("/"), *parts) if parts else base


def write_text(uri: str, text: str) -> None:
    with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(text.encode())


def write_bytes(uri: str, data: bytes) -> None:
    with FileSystems.create(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(data)


def read_text(uri: str) -> str | None:
    if not FileSystems.exists(uri):
        return None
    with FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode()


def files_under(uri: str) -> list[str]:
    """Every file below ``uri`` (a folder or prefix), at any depth."""
    found = FileSystems.match([join(uri, "**")])[0].metadata_list
    return sorted(m.path for m in found)


def delete_tree(uri: str) -> None:
    files = files_under(uri)
    if files:
        FileSystems.delete(files)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Run:
    """One run's work folder and how it will be published."""

    target: str  # OUT as given (a local path, or a URI)
    work: str  # where the pipeline writes
    published: str  # where readers find the result once published
    mode: str  # "rename" | "pointer"
    name: str

    def path(self, *parts: str) -> str:
        return join(self.work, *parts)


def check_target(output: str, overwrite: bool) -> None:
    """A usage error, before anything is written, for an output that may not be replaced."""
    if is_local(output):
        target = local_path(output)
        if target.exists() and not (target.is_dir() and not any(target.iterdir())):
            if not overwrite:
                raise OutputExistsError(f"{output} exists; pass --overwrite to replace it")
            check_replaceable(target)
        return
    if files_under(output):
        if marker_kind(read_text(join(output, MARKER))) is None:
            raise UsageError(
                f"refusing to write into {output}: it is not a deepiqa output (no {MARKER})"
            )
        if FileSystems.exists(join(output, POINTER)) and not overwrite:
            raise OutputExistsError(f"{output} exists; pass --overwrite to replace it")


def start(output: str, run_name: str) -> Run:
    """Make the run's work folder (``check_target`` first)."""
    if is_local(output):
        folder = local_path(output).absolute()
        staging = folder.parent / f".{folder.name}.staging-{run_name}"
        staging.mkdir(parents=True)
        return Run(str(folder), str(staging), str(folder), "rename", run_name)
    if not files_under(output):
        write_text(join(output, MARKER), marker_text(KIND))  # crash leftovers stay recognisable
    work = join(output, RUNS, run_name)
    return Run(output, work, work, "pointer", run_name)


def abandon(run: Run) -> None:
    """A failed run: its work folder goes (a remote one is also swept by the next run)."""
    if run.mode == "rename":
        shutil.rmtree(run.work, ignore_errors=True)
    else:
        delete_tree(run.work)


def commit(run: Run) -> None:
    """Publish a finished work folder (marker, ``_COMPLETE`` last, then rename or pointer)."""
    write_text(run.path(MARKER), marker_text(KIND))
    write_text(run.path(COMPLETE), _now() + "\n")
    if run.mode == "rename":
        target = Path(run.target)
        old = target.parent / f".{target.name}.old-{run.name}"
        if target.exists():
            os.rename(target, old)
        os.rename(run.work, target)
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
        return
    record = {"run": f"{RUNS}/{run.name}", "published": _now()}
    write_text(join(run.target, POINTER), json.dumps(record) + "\n")
    runs = {
        p[len(join(run.target, RUNS)) :].lstrip("/").split("/", 1)[0]
        for p in files_under(join(run.target, RUNS))
    }
    for name in sorted(runs - {run.name}):
        delete_tree(join(run.target, RUNS, name))
