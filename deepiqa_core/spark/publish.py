"""Publishing a job's output folder atomically (driver side)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..exits import OutputExistsError

COMPLETE_MARKER = "_COMPLETE"


@contextmanager
def publish_atomically(target: Path, overwrite: bool) -> Iterator[Path]:
    """Yield a private staging folder; on success it replaces ``target`` by rename.

    A run that crashes leaves only ``.<name>.staging-<id>`` beside the target, never a partial
    ``target``; ``target/_COMPLETE`` is written last inside staging, so readers can also check it.
    """
    target = target.absolute()
    if target.exists() and not overwrite:
        raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    staging = target.parent / f".{target.name}.staging-{run_id}"
    staging.mkdir()
    try:
        yield staging
        (staging / COMPLETE_MARKER).write_text(run_id + "\n")
        old = target.parent / f".{target.name}.old-{run_id}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
