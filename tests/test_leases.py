"""Leases on a state or work folder: renewed while held, dead when not renewed, one winner."""

from __future__ import annotations

import json
import threading
import time

import pytest

from deepiqa_core.errors import StateBusyError
from deepiqa_core.runs import leases
from deepiqa_core.runs.leases import OWNER, Lease, is_live, read_owner
from deepiqa_core.spark.storage import HadoopStorage

pytestmark = pytest.mark.spark


def test_a_lease_is_renewed_while_held_and_removed_on_release(spark, tmp_path, monkeypatch):
    monkeypatch.setattr(leases, "RENEW_SECONDS", 0.05)
    storage = HadoopStorage(spark, str(tmp_path))
    lease = Lease(storage, str(tmp_path)).acquire(settle=0)
    time.sleep(0.5)
    # read as other runs read it: a renewal every 0.05 s rewrites the file in place, and a
    # plain read can catch it empty (this test once failed so)
    record = read_owner(storage, str(tmp_path))
    assert record is not None
    assert record["token"] == lease.token and record["renewed"] > record["started"] + 0.04
    with pytest.raises(StateBusyError, match="since"):
        Lease(storage, str(tmp_path)).acquire(settle=0)
    lease.release()
    assert not (tmp_path / OWNER).exists()


def test_liveness_is_the_last_renewal_wherever_the_host_was():
    now = time.time()
    other = {"host": "node-17.cluster", "pid": 1, "started": now - 7200}
    assert is_live({**other, "renewed": now - 30}, now)
    assert not is_live({**other, "renewed": now - leases.LEASE_SECONDS - 1}, now)
    assert not is_live(other, now)  # never renewed: counts from its start
    assert is_live({"host": "node-17.cluster", "pid": 1, "started": now - 5}, now)
    here = {"host": leases.socket.gethostname(), "pid": 2**22 + 7, "started": now}
    assert not is_live(here, now)  # this host, a pid that is gone: dead at once
    assert not is_live({"host": "x", "renewed": "yesterday"}, now)
    assert not is_live(None, now)


def test_two_runs_racing_for_one_folder_exactly_one_wins(spark, tmp_path):
    storage = HadoopStorage(spark, str(tmp_path))

    def claim(folder: str, start: threading.Barrier, won: list, lost: list) -> None:
        start.wait()
        try:
            won.append(Lease(storage, folder).acquire(settle=0.5))
        except StateBusyError as exc:
            lost.append(str(exc))

    for attempt in range(10):
        folder = tmp_path / f"state{attempt}"
        folder.mkdir()
        start = threading.Barrier(2)
        won, lost = [], []
        threads = [
            threading.Thread(target=claim, args=(str(folder), start, won, lost)) for _ in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert (len(won), len(lost)) == (1, 1), (won, lost)
        assert json.loads((folder / OWNER).read_text())["token"] == won[0].token
        won[0].release()
