"""Leases: who may write a folder now (an audit state, a score job's work folder).

A run holds a folder by its owner record (``_OWNER.json``: host, pid, a random token, when it
started and when it last renewed). The running driver renews it every ``RENEW_SECONDS``; a
record not renewed for ``LEASE_SECONDS`` is dead wherever its host was (a record with no
renewal at all counts from its start), so a killed run never blocks the next night for long,
even when the next night's driver runs on another host. On the same host a dead pid frees the
lease at once.

Taking a lease is create, settle, read back: a run that finds no live record removes a dead
one, creates its own only if none exists (``Storage.create_new``: atomic on local disks, HDFS
and with S3's conditional PUT), waits ``SETTLE_SECONDS`` and reads the record again; only the
run whose token is still there goes on. Two runs racing for one folder therefore cannot both
win unless one of them took longer than ``SETTLE_SECONDS`` between its check and its create
(milliseconds apart); object stores give read-after-write consistency for this.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

from ..errors import StateBusyError
from .storage import Storage, join

OWNER = "_OWNER.json"
LEASE_SECONDS = 300.0
RENEW_SECONDS = 60.0
SETTLE_SECONDS = 1.0


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def owner_record(token: str, started: float, renewed: float | None = None) -> str:
    return json.dumps(
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": token,
            "started": started,
            "renewed": started if renewed is None else renewed,
            "lease_seconds": LEASE_SECONDS,
        }
    )


def read_owner(storage: Storage, folder: str, tries: int = 5) -> dict[str, Any] | None:
    """The folder's owner record, or None (none, or unreadable). A renewal rewrites the file
    in place, so a reader can catch it half-written: an unreadable record is read again a few
    times before it counts as none (else a live lease would look dead for a moment)."""
    for attempt in range(tries):
        try:
            text = storage.read_text(join(folder, OWNER))
            if text is None:
                return None
            owner = json.loads(text)
            return owner if isinstance(owner, dict) else None
        except Exception:  # noqa: BLE001 - half-written (ValueError), gone while read (IO)
            if attempt < tries - 1:
                time.sleep(0.1)
    return None


def is_live(owner: dict[str, Any] | None, now: float | None = None) -> bool:
    """Whether the run behind ``owner`` may still be writing (see the module docstring)."""
    if owner is None:
        return False
    now = time.time() if now is None else now
    try:
        last = float(owner.get("renewed", owner.get("started", 0)))
        lease = float(owner.get("lease_seconds", LEASE_SECONDS))
    except (TypeError, ValueError):
        return False
    if now - last > lease:
        return False
    if owner.get("host") != socket.gethostname():
        return True  # another machine's run: only its renewals can tell
    try:
        os.kill(int(owner["pid"]), 0)
    except (ProcessLookupError, KeyError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


def alive(storage: Storage, folder: str) -> bool:
    return is_live(read_owner(storage, folder))


def check_free(storage: Storage, folder: str) -> dict[str, Any] | None:
    """``StateBusyError`` while a live run holds ``folder``; else its dead record (or None)."""
    owner = read_owner(storage, folder)
    if owner is not None and is_live(owner):
        raise StateBusyError(held_message(owner, folder))
    return owner


def held_message(owner: dict[str, Any], folder: str) -> str:
    if "started" not in owner:
        return f"another run took {folder} at the same moment; it holds it now"
    since = _stamp(float(owner.get("started", 0)))
    renewed = _stamp(float(owner.get("renewed", owner.get("started", 0))))
    return (
        f"another run holds {folder} since {since} (host {owner.get('host')}, pid "
        f"{owner.get('pid')}, lease renewed {renewed}); it is free once that run ends or "
        f"{int(LEASE_SECONDS)} s after its last renewal"
    )


class Lease:
    """Hold ``folder`` for one run: ``acquire`` (``StateBusyError`` if a live run holds it),
    renewed in the background, ``release`` when the run ends however it ends."""

    def __init__(self, storage: Storage, folder: str) -> None:
        self.storage = storage
        self.folder = folder
        self.token = uuid.uuid4().hex
        self.started = time.time()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return join(self.folder, OWNER)

    def acquire(self, settle: float = SETTLE_SECONDS) -> Lease:
        owner = check_free(self.storage, self.folder)
        if owner is None and self.storage.exists(self.path):
            # unreadable: being written by a run that just took it, or a crash mid-write
            if time.time() - self.storage.modified(self.path) < LEASE_SECONDS:
                raise StateBusyError(held_message({}, self.folder))
            self.storage.delete(self.path)
        elif owner is not None:  # a dead run's record: remove it unless it was just replaced
            again = read_owner(self.storage, self.folder)
            if again is not None and again.get("token") != owner.get("token"):
                raise StateBusyError(held_message(again, self.folder))
            self.storage.delete(self.path)
        if not self.storage.create_new(self.path, owner_record(self.token, self.started)):
            raise StateBusyError(
                held_message(read_owner(self.storage, self.folder) or {}, self.folder)
            )
        time.sleep(settle)
        owner = read_owner(self.storage, self.folder)
        if owner is None or owner.get("token") != self.token:
            raise StateBusyError(held_message(owner or {}, self.folder))
        self._thread = threading.Thread(target=self._renew, name="deepiqa-lease", daemon=True)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self.storage.write_text(
                    self.path, owner_record(self.token, self.started, time.time())
                )
            except Exception as exc:  # noqa: BLE001 - one missed renewal is not fatal
                print(f"deepiqa: warning: could not renew {self.path} ({exc})")

    def release(self) -> None:
        """Stop renewing and remove the record if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        owner = read_owner(self.storage, self.folder)
        if owner is None or owner.get("token") == self.token:
            self.storage.delete(self.path)
