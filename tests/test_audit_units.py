"""The audit's parts on tiny frames and a local folder (the end-to-end runs are in
test_audit.py): what changed since the previous snapshot, and the state's repair rule."""

from __future__ import annotations

import json

import pytest

from deepiqa_core.errors import AuditStateError
from deepiqa_core.spark.audit import stats
from deepiqa_core.spark.audit.state import LATEST, AuditState, Latest

pytestmark = pytest.mark.spark

SNAPSHOT = "id string, uri string, score double, error_code string, removed boolean"
HISTORY = (
    "id string, uri string, event string, reason string, score double, error_code string, "
    "error_message string"
)


def _changes(spark, higher_better: bool = True) -> stats.Changes:
    previous = spark.createDataFrame(
        [
            ("a", "s3://l/a", 50.0, None, False),  # changed, worse by 20
            ("b", "s3://l/b", 60.0, None, False),  # changed, now fails
            ("c", "s3://l/c", None, "decode_error", False),  # changed, recovered
            ("d", "s3://l/d", 40.0, None, True),  # gone before: not "before" of anything
            ("g", "s3://l/g", 35.0, None, False),  # removed tonight
        ],
        SNAPSHOT,
    )
    history = spark.createDataFrame(
        [
            ("a", "s3://l/a", "scored", "changed", 30.0, None, None),
            ("b", "s3://l/b", "scored", "changed", None, "decode_error", "not an image"),
            ("c", "s3://l/c", "scored", "changed", 70.0, None, None),
            ("d", "s3://l/d", "scored", "new", 45.0, None, None),  # back under the same id
            ("e", None, "scored", "new", 10.0, None, None),
            ("g", "s3://l/g", "removed", "removed", 35.0, None, None),
        ],
        HISTORY,
    )
    return stats.changes(history, previous, higher_better)


def test_changes_sort_what_happened_and_cap_the_lists(spark):
    changes = _changes(spark)
    lists = changes.lists()
    assert {k: v["count"] for k, v in lists.items()} == {
        "new": 2,
        "changed": 1,
        "removed": 1,
        "newly_failing": 1,
        "recovered": 1,
    }
    assert lists["changed"]["rows"] == [
        {"id": "a", "uri": "s3://l/a", "before": 50.0, "score": 30.0, "drop": 20.0}
    ]
    assert [r["uri"] for r in lists["new"]["rows"]] == ["e", "s3://l/d"]  # worst first; no uri: id
    assert lists["newly_failing"]["rows"][0]["before"] == 60.0
    assert lists["newly_failing"]["rows"][0]["error_message"] == "not an image"
    assert lists["recovered"]["rows"][0]["before_error"] == "decode_error"
    assert changes.worse(19.9) == 1 and changes.worse(20) == 0
    assert changes.new_below(20) == 1 and changes.new_below(50) == 2
    assert changes.lists(cap=1)["new"] == {"count": 2, "rows": [lists["new"]["rows"][0]]}


def test_a_drop_follows_the_score_direction(spark):
    lower_better = _changes(spark, higher_better=False).lists()["changed"]["rows"]
    assert lower_better[0]["drop"] == -20.0  # 50 -> 30 is better when lower is better


def test_a_first_run_has_only_new_images(spark):
    history = spark.createDataFrame([("e", "u", "scored", "new", 10.0, None, None)], HISTORY)
    lists = stats.changes(history, None, True).lists()
    assert lists["new"]["count"] == 1 and lists["changed"]["count"] == 0


def test_the_state_drops_what_latest_does_not_name_and_lets_go(spark, tmp_path):
    state = AuditState(spark, str(tmp_path / "state"))
    state.open()
    state.close()  # a new state: marker written, lease released
    root = tmp_path / "state"
    (root / LATEST).write_text(
        json.dumps(
            Latest("r1", "snapshots/r1", "sha", ["r1"], {"r1": "run_date=D/run_id=r1"}).__dict__
        )
    )
    for folder in ("snapshots/r1", "snapshots/r2", "runs/r1", "runs/r2", "_work/r2/x"):
        (root / folder).mkdir(parents=True)
    for part in ("run_date=D/run_id=r1", "run_date=D/run_id=r2", "run_date=E/run_id=r3"):
        (root / "history" / part).mkdir(parents=True)
    state = AuditState(spark, str(root))
    state.open()
    try:
        assert (root / "_OWNER.json").exists()
        assert sorted(p.name for p in (root / "snapshots").iterdir()) == ["r1"]
        assert sorted(p.name for p in (root / "runs").iterdir()) == ["r1"]
        assert sorted(p.name for p in (root / "history").iterdir()) == ["run_date=D"]
        assert [p.name for p in (root / "history" / "run_date=D").iterdir()] == ["run_id=r1"]
        assert not (root / "_work").exists()
        assert state.snapshot_uri() == state.path("snapshots/r1")
    finally:
        state.close()
    assert not (root / "_OWNER.json").exists()


def test_an_unreadable_pointer_names_itself():
    with pytest.raises(AuditStateError, match="_LATEST is unreadable"):
        Latest.parse('{"run_id": ', "_LATEST")
    assert Latest.parse(None) == Latest()
    with pytest.raises(AuditStateError, match="runs/partitions"):
        Latest.parse(json.dumps({"runs": "r1"}))
