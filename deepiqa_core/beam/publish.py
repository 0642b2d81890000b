"""Where a Beam run writes, and how it becomes visible: the run protocol (``runs.publish``), the
same rules as the Spark job's.

* **Local outputs** (a path or ``file://``, ``runs.storage.LocalStorage``): the run writes
  ``.<name>.staging-<run>`` beside ``OUT`` and is published by rename.
* **Remote outputs** (``gs://``, ``s3://`` … through Beam's ``FileSystems``,
  ``beam.storage.FileSystemsStorage``): the run writes ``OUT/runs/<time>-<run>/`` and is
  published by writing ``OUT/_LATEST`` last, so ``runs.publish.published_uri`` and the README's
  pandas/DuckDB recipes read both engines' outputs alike.

A Beam run cannot be resumed: each run has its own key, and a failed run's work folder is
deleted at once (a killed one's by the next run, as its lease is dead).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from ..runs.publish import Run, pointer_run, rename_run
from ..runs.storage import LocalStorage
from ..sources import local_path
from .storage import FileSystemsStorage

KIND = "score_beam"


def is_local(uri: str) -> bool:
    return urlparse(uri).scheme in ("", "file") or len(urlparse(uri).scheme) == 1


@contextmanager
def publish(output: str, overwrite: bool, run_name: str) -> Iterator[Run]:
    """A work folder for one run of ``output``; published when the block completes. The target
    checks (``--overwrite``, only deepiqa outputs replaced) run on entry, before any work."""
    if is_local(output):
        target = str(local_path(output).absolute())
        with rename_run(LocalStorage(), target, overwrite, False, run_name, KIND, False) as run:
            yield run
        return
    storage = FileSystemsStorage()
    with pointer_run(storage, output, overwrite, False, run_name, KIND, keep_failed=False) as run:
        yield run
