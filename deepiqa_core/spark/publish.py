"""Publishing a job's output folder atomically (driver side, on a file system it can rename).

A run writes everything into ``.<name>.staging-<run>`` beside the target, marks it complete
(``_COMPLETE`` last), then swaps it in: the old target is renamed to ``.<name>.old-<run>``, the
staging folder to the target, and the old one is deleted. A crash can leave three states, and
the next run for the same target repairs each before it starts (``recover``):

* no target, a complete staging folder: a run that finished but was cut between the two renames
  is published (the newest such folder);
* no target, no complete staging, an ``.old-`` folder: the previous result is put back;
* staging folders of runs that are gone (their process is dead on this host, or they started
  more than a day ago) and every ``.old-`` folder once a result is in place: deleted.

One run per target at a time: two runs publishing the same folder at once are not supported.

Only folders deepiqa made are ever replaced (``deepiqa_core.outputs``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..exits import OutputExistsError
from ..outputs import check_replaceable, write_marker

COMPLETE_MARKER = "_COMPLETE"
OWNER = "_OWNER.json"
STALE_SECONDS = 24 * 3600


def _siblings(target: Path, kind: str) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.{kind}-*"))


def _alive(folder: Path) -> bool:
    """Whether the run writing staging ``folder`` may still be at work: its ``_OWNER.json``
    names a live process on this host, or a run elsewhere started less than a day ago. A
    folder without one was finished or abandoned (a run removes it when it completes)."""
    try:
        owner = json.loads((folder / OWNER).read_text())
    except (OSError, ValueError):
        return False
    if time.time() - owner.get("started", 0) > STALE_SECONDS:
        return False
    if owner.get("host") != socket.gethostname():
        return True  # another machine's run: only its age can tell
    try:
        os.kill(int(owner["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def recover(target: Path) -> None:
    """Repair what a crashed run left beside ``target`` (see the module docstring)."""
    if not target.parent.is_dir():
        return
    if not target.exists():
        complete = [s for s in _siblings(target, "staging") if (s / COMPLETE_MARKER).exists()]
        olds = _siblings(target, "old")
        if complete:
            max(complete, key=lambda s: (s / COMPLETE_MARKER).stat().st_mtime).rename(target)
        elif olds:
            max(olds, key=lambda s: s.stat().st_mtime).rename(target)
    for folder in _siblings(target, "old"):  # superseded once a result is in place
        shutil.rmtree(folder, ignore_errors=True)
    for folder in _siblings(target, "staging"):
        if not _alive(folder):
            shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def publish_atomically(target: Path, overwrite: bool, kind: str = "score") -> Iterator[Path]:
    """Yield a private staging folder; on success it replaces ``target`` by rename."""
    target = target.absolute()
    recover(target)
    if target.exists():
        if not overwrite:
            raise OutputExistsError(f"{target} exists; pass --overwrite to replace it")
        check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:12]
    staging = target.parent / f".{target.name}.staging-{run_id}"
    staging.mkdir()
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    (staging / OWNER).write_text(json.dumps(owner))
    try:
        yield staging
        write_marker(staging, kind)
        (staging / OWNER).unlink()
        (staging / COMPLETE_MARKER).write_text(run_id + "\n")
        old = target.parent / f".{target.name}.old-{run_id}"
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
