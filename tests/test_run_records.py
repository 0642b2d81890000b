"""The typed records a run writes (``deepiqa_core.runs``): JSON at the edge, the same record
back, and the rules both engines share."""

from __future__ import annotations

import json

import pytest

from deepiqa_core.exits import ExitCode
from deepiqa_core.runs.summary import PERCENTILES, RunSummary, ScoreStats, percentile_keys


def _summary(**stats) -> RunSummary:
    counts = {
        "rows_in": 10,
        "rows_out": 10,
        "scored": 8,
        "errors": {"missing": 1, "decode_error": 1},
        "out_of_range": 1,
        "mean": 41.5,
        "quantiles": [10.0, 20.0, 40.0, 60.0, 70.0],
        "rank_error": 1e-3,
        **stats,
    }
    return RunSummary(
        engine="spark",
        model="wadiqam-nr",
        model_sha256="ab" * 32,
        run_id="20261207T010203-abc",
        started_at="2026-12-07T01:02:03Z",
        finished_at="2026-12-07T01:02:07Z",
        stats=ScoreStats.build(**counts),
        seconds=4.0,
        model_loads_by_compute={"cpu/fp32": 2},
        output="file:/out",
        publish="rename",
        input={"source": "photos/", "ref": None},
        arguments={"execution": {"max_batch_rows": 64}},
        versions={"deepiqa": "0"},
        engine_facts={"partitions": 2, "worker_peak_rss_mib": 300.0},
    )


def test_summary_json_round_trips_and_keeps_the_keys_tools_read():
    summary = _summary()
    record = json.loads(json.dumps(summary.to_json()))
    assert RunSummary.from_json(record) == summary
    assert record["schema_version"] == 1 and record["engine"] == "spark"
    assert record["failed"] == 2 and record["errors_by_code"] == {"decode_error": 1, "missing": 1}
    assert record["images_per_second"] == 2.5 and record["model_loads"] == 2
    assert record["partitions"] == 2  # engine facts are top-level keys, as before
    assert list(record["score_percentiles"]) == ["p5", "p25", "p50", "p75", "p95"]
    assert len(percentile_keys()) == len(PERCENTILES)


def test_error_rate_verdict_and_the_printed_lines():
    summary = _summary()
    assert summary.error_rate_verdict(None) == (ExitCode.OK, None)
    assert summary.error_rate_verdict(0.2) == (ExitCode.OK, None)
    code, line = summary.error_rate_verdict(0.1)
    assert code == ExitCode.THRESHOLD and "0.200 exceeds --max-error-rate 0.1" in (line or "")
    text = summary.text("deepiqa score", "across 2 partitions")
    assert "10 images with wadiqam-nr (abababababab) in 4.0 s, 2.5 images/s" in text
    assert "failed 2 (decode_error 1, missing 1)" in text and "1 score(s) outside" in text
    assert "10.00 / 20.00 / 40.00 / 60.00 / 70.00" in text
    assert "model loads: 2 (cpu/fp32 x2) across 2 partitions" in text
    empty = _summary(scored=0, mean=None, quantiles=[], errors={})
    assert empty.stats.score_percentiles == {} and "p5/p25" not in empty.text("t", "")


@pytest.mark.parametrize("missing", ["rows_in", "engine"])
def test_a_record_without_a_required_key_is_refused(missing):
    record = _summary().to_json()
    del record[missing]
    with pytest.raises((KeyError, TypeError)):
        RunSummary.from_json(record)


def _audit_summary():
    from deepiqa_core.audit.summary import AuditSummary, Counts, Distribution

    library = Distribution(31, 31, 0, 0.9, 89.3, 99.9, 80.0, None, 0.0)
    run = Distribution(5, 5, 0, 45.7, 93.4, 99.9, 83.6, None, 0.0)
    return AuditSummary(
        run_id="r2",
        started_at="2026-12-07T21:06:14Z",
        finished_at="2026-12-07T21:07:01Z",
        seconds=48.1,
        library="photos/",
        ref=None,
        state="file:/state",
        model="wadiqam-nr",
        model_sha256="ab" * 32,
        score_name="quality",
        score_direction="higher_better",
        score_range=[0.0, 100.0],
        threshold=None,
        counts=Counts.of({"new": 2, "changed": 3, "unchanged": 26}, 1, run),
        errors={},
        library_stats=library,
        run_stats=run,
        alerts=[{"rule": "worse(15)>0", "value": 0, "fired": False, "status": "ok"}],
        changes={"new": {"count": 2, "rows": []}},
        histogram={"edges": [0, 50, 100], "library": [3, 28], "run": [1, 4]},
        folders=[],
        folders_truncated=False,
        folders_total=1,
        arguments={"gallery": 12},
        alert_rules=["worse(15)>0"],
        versions={"deepiqa": "0"},
    )


def test_audit_summary_json_round_trips_and_says_how_the_run_ended():
    from deepiqa_core.audit.summary import AuditSummary

    summary = _audit_summary()
    record = json.loads(json.dumps(summary.to_json()))
    assert (record["outcome"], record["alerted"], record["schema_version"]) == ("ok", False, 1)
    assert record["counts"] == {
        "library": 31,
        "new": 2,
        "changed": 3,
        "unchanged": 26,
        "removed": 1,
        "retried": 0,
        "rescored_model": 0,
        "rescored_full": 0,
        "scored": 5,
        "failed": 0,
    }
    assert record["library_stats"]["median"] == 89.3 and record["report"] is None
    assert AuditSummary.from_json(record) == summary
    summary.alerts[0]["fired"] = True
    assert summary.to_json()["outcome"] == "alert" and summary.alerted
    newer = {**record, "written_by_a_newer_deepiqa": 1}
    assert AuditSummary.from_json(newer).to_json()["written_by_a_newer_deepiqa"] == 1
    del newer["counts"]
    with pytest.raises(KeyError):
        AuditSummary.from_json(newer)
