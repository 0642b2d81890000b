"""The nightly audit: incremental runs, history and snapshot, alerts, exit codes, a killed run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest

from .conftest import JOBS, encode, load_job, make_image, spark_submit

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def audit():
    return load_job("audit").main


def _library(folder: Path, n: int, bad: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sub = folder / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        (sub / f"img{i:03d}.png").write_bytes(encode(make_image(40, 72, seed=i)))
    for i in range(bad):
        (folder / f"broken{i}.png").write_bytes(b"not an image")
    return folder


def _args(lib: Path, state: Path, weights_dir: Path) -> list[str]:
    return [
        str(lib),
        "--state",
        str(state),
        "--weights",
        str(weights_dir / "wadiqam-nr.safetensors"),
    ]


def _latest(state: Path) -> dict:
    return json.loads((state / "_LATEST").read_text())


def _summary(state: Path) -> dict:
    run = _latest(state)["run_id"]
    return json.loads((state / "runs" / run / "summary.json").read_text())


def _snapshot(state: Path) -> pd.DataFrame:
    return pd.read_parquet(state / _latest(state)["snapshot"])


@pytest.mark.slow  # several audit runs each: the fast loop keeps the alert and usage tests
def test_incremental_runs_score_only_what_changed(spark, audit, weights_dir, tmp_path):
    lib = _library(tmp_path / "lib", 12, bad=1)
    state = tmp_path / "state"
    nr = weights_dir / "wadiqam-nr.safetensors"
    args = [str(lib), "--state", str(state), "--weights", str(nr)]

    assert audit(args, spark=spark) == 0
    first = _summary(state)
    assert (first["counts"]["library"], first["counts"]["new"], first["counts"]["scored"]) == (
        13,
        13,
        13,
    )
    assert first["errors"] == {"decode_error": 1}
    snap = _snapshot(state)
    assert len(snap) == 13 and not snap["removed"].any()
    assert snap["score"].notna().sum() == 12

    # unchanged library: nothing scored, every row carried forward with its score
    assert audit(args, spark=spark) == 0
    second = _summary(state)
    assert second["counts"]["scored"] == 0 and second["counts"]["unchanged"] == 13
    snap2 = _snapshot(state).set_index("id").sort_index()
    pd.testing.assert_series_equal(snap2["score"], snap.set_index("id").sort_index()["score"])
    assert second["library_stats"]["median"] == first["library_stats"]["median"]

    # touch 2, replace 1, delete 2, add 1: exactly 4 scored, 2 removed
    files = sorted(lib.rglob("img*.png"))
    for f in files[:2]:
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    files[2].write_bytes(encode(make_image(40, 72, seed=99)))
    for f in files[3:5]:
        f.unlink()
    (lib / "b" / "new.png").write_bytes(encode(make_image(40, 72, seed=77)))
    assert audit(args, spark=spark) == 0
    third = _summary(state)
    c = third["counts"]
    assert (c["changed"], c["new"], c["removed"], c["scored"]) == (3, 1, 2, 4)
    assert c["library"] == 12 and c["unchanged"] == 8
    snap3 = _snapshot(state)
    assert snap3["removed"].sum() == 2 and len(snap3) == 14
    assert set(snap3[snap3["removed"]]["uri"]) == {str(f) for f in files[3:5]}

    # a new model rescores everything automatically
    other = weights_dir / "diqam-nr.safetensors"
    assert audit([*args[:-1], str(other)], spark=spark) == 0
    fourth = _summary(state)
    assert fourth["counts"]["scored"] == 12 and fourth["counts"]["rescored_model"] == 12
    assert fourth["model"] == "diqam-nr"

    # history: append-only, one partition per run, readable by pyarrow, pandas, DuckDB, Spark
    runs = _latest(state)["runs"]
    assert len(runs) == 4
    history = ds.dataset(state / "history", partitioning="hive").to_table().to_pandas()
    per_run = history.groupby("run_id").size().to_dict()
    assert per_run == {runs[0]: 13, runs[2]: 6, runs[3]: 12}  # run 2 scored nothing
    assert set(history[history["event"] == "removed"]["run_id"]) == {runs[2]}
    assert len(pd.read_parquet(state / "history")) == 31
    pattern = f"{state}/history/*/*/*.parquet"
    con = duckdb.connect()
    n = con.execute(f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning=true)")
    assert n.fetchone()[0] == 31
    snap_sql = (
        f"SET VARIABLE snap = (SELECT snapshot FROM read_json('{state}/_LATEST'));"
        f"SELECT count(*) FROM read_parquet('{state}/' || getvariable('snap') || '/*.parquet')"
    )
    assert con.execute(snap_sql).fetchone()[0] == 14
    spark_rows = spark.read.option("mergeSchema", "true").parquet(str(state / "history"))
    assert spark_rows.count() == 31 and "run_date" in spark_rows.columns

    # reports: one per run, each self-contained
    for r in runs:
        html = (state / "runs" / r / "report.html").read_text()
        assert r in html and "https://" not in html and "http://" not in html


def test_alert_rules_set_exit_code_1_and_are_named(spark, audit, weights_dir, tmp_path):
    lib = _library(tmp_path / "lib", 6, bad=1)
    state = tmp_path / "state"
    nr = weights_dir / "wadiqam-nr.safetensors"
    base = [str(lib), "--state", str(state), "--weights", str(nr)]
    code = audit([*base, "--alert", "error_rate>0.1", "--alert", "p10<-1000"], spark=spark)
    assert code == 1
    summary = _summary(state)
    fired = {a["rule"]: a["fired"] for a in summary["alerts"]}
    assert fired == {"error_rate>0.1": True, "p10<-1000": False}
    assert summary["alerted"] is True
    assert summary["alerts"][0]["value"] == pytest.approx(1 / 7, abs=1e-6)
    # published all the same; a second run with no drop and no change does not fire
    assert audit([*base, "--alert", "median_drop>0.5", "--alert", "new>0"], spark=spark) == 0
    second = _summary(state)
    assert [a["value"] for a in second["alerts"]] == [0.0, 0]


def test_usage_errors_exit_2_and_touch_nothing(
    spark, audit, weights_dir, tmp_path, capsys, s3_listing_prefixes
):
    lib = _library(tmp_path / "lib", 2)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "keep.txt").write_text("mine")
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    assert audit([str(lib), "--state", str(theirs), "--weights", nr], spark=spark) == 2
    assert sorted(p.name for p in theirs.iterdir()) == ["keep.txt"]
    assert "not a deepiqa audit state" in capsys.readouterr().err
    inside = lib / "state"
    assert audit([str(lib), "--state", str(inside), "--weights", nr], spark=spark) == 2
    assert not inside.exists()
    # plain s3:// (boto3, no Hadoop connector here): someone else's prefix is refused as such
    import boto3

    boto3.client("s3").put_object(Bucket="media", Key="their-prefix/keep.txt", Body=b"mine")
    assert audit([str(lib), "--state", "s3://media/their-prefix", "--weights", nr], spark) == 2
    assert "not a deepiqa audit state" in capsys.readouterr().err
    listed = boto3.client("s3").list_objects_v2(Bucket="media", Prefix="their-prefix/")
    assert [o["Key"] for o in listed["Contents"]] == ["their-prefix/keep.txt"]
    fresh = tmp_path / "fresh-state"
    for precision in ("bf16", "auto"):  # runs must compare across nights and hardware
        args = [str(lib), "--state", str(fresh), "--weights", nr, "--precision", precision]
        assert audit(args, spark=spark) == 2
        assert "fp32 only" in capsys.readouterr().err and not fresh.exists()
    with pytest.raises(SystemExit) as bad_rule:
        audit([str(lib), "--state", str(tmp_path / "s"), "--alert", "p10 about 3"], spark=spark)
    assert bad_rule.value.code == 2


@pytest.mark.slow  # several audit runs each: the fast loop keeps the alert and usage tests
def test_score_rules_need_a_known_direction(spark, audit, tmp_path, capsys):
    from deepiqa_core.weights import save_weights
    from deepiqa_core.weights.format import WeightsMeta

    from .conftest import trained_like

    blind = tmp_path / "blind.safetensors"
    save_weights(trained_like("wadiqam-nr"), blind, WeightsMeta(variant="wadiqam-nr"))
    lib = _library(tmp_path / "lib", 2)
    state = tmp_path / "state"
    args = [str(lib), "--state", str(state), "--weights", str(blind), "--alert", "p10<40"]
    assert audit(args, spark=spark) == 2
    assert "--score-direction" in capsys.readouterr().err and not state.exists()
    assert audit([*args, "--score-direction", "higher_better"], spark=spark) in (0, 1)
    assert _summary(state)["score_direction"] == "higher_better"


@pytest.mark.slow  # several audit runs each: the fast loop keeps the alert and usage tests
def test_manifest_versions_from_a_column_or_the_content(spark, audit, weights_dir, tmp_path):
    lib = _library(tmp_path / "lib", 4)
    uris = sorted(str(p) for p in lib.rglob("*.png"))
    manifest = tmp_path / "m.parquet"
    table = pd.DataFrame({"uri": uris, "etag": ["v1"] * 4, "owner": ["x", "y", "z", "w"]})
    table.to_parquet(manifest)
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    by_column = [str(manifest), "--state", str(tmp_path / "s1"), "--weights", nr]
    assert audit([*by_column, "--version-column", "etag"], spark=spark) == 0
    table.loc[1, "etag"] = "v2"
    table.to_parquet(manifest)
    assert audit([*by_column, "--version-column", "etag"], spark=spark) == 0
    assert _summary(tmp_path / "s1")["counts"]["changed"] == 1
    snap = _snapshot(tmp_path / "s1")
    assert set(snap["owner"]) == {"x", "y", "z", "w"}  # the manifest's own columns kept

    by_content = [str(manifest), "--state", str(tmp_path / "s2"), "--weights", nr]
    assert audit(by_content, spark=spark) == 0
    os.utime(uris[0], ns=(0, 10**18))  # a new mtime, the same bytes: unchanged
    Path(uris[3]).write_bytes(encode(make_image(40, 72, seed=55)))
    assert audit(by_content, spark=spark) == 0
    counts = _summary(tmp_path / "s2")["counts"]
    assert (counts["changed"], counts["unchanged"]) == (1, 3)


@pytest.mark.slow  # several audit runs each: the fast loop keeps the alert and usage tests
def test_fr_audit_rescores_the_images_of_a_replaced_reference(spark, audit, weights_dir, tmp_path):
    refs, dist = tmp_path / "refs", tmp_path / "dist"
    refs.mkdir()
    dist.mkdir()
    for name in ("cat", "dog"):
        seed = len(name) + ord(name[0])
        (refs / f"{name}.png").write_bytes(encode(make_image(40, 72, seed=seed)))
        for k in range(2):
            (dist / f"{name}__v{k}.png").write_bytes(encode(make_image(40, 72, seed=seed + k + 1)))
    fr = str(weights_dir / "wadiqam-fr.safetensors")
    state = tmp_path / "state"
    args = [str(dist), "--ref", str(refs), "--state", str(state), "--weights", fr]
    assert audit(args, spark=spark) == 0
    assert _summary(state)["counts"]["scored"] == 4
    (refs / "cat.png").write_bytes(encode(make_image(40, 72, seed=123)))
    assert audit(args, spark=spark) == 0
    again = _summary(state)
    assert again["counts"]["changed"] == 2 and again["counts"]["unchanged"] == 2
    snap = _snapshot(state)
    assert snap["ref_uri"].str.endswith(("cat.png", "dog.png")).all()


@pytest.mark.slow
def test_a_killed_run_publishes_nothing_and_the_rerun_completes(weights_dir, tmp_path):
    lib = _library(tmp_path / "lib", 6)
    state = tmp_path / "state"
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    base = [sys.executable, str(JOBS / "audit.py"), str(lib), "--state", str(state)]
    base += ["--weights", nr]
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    assert subprocess.run(base, env=env, capture_output=True, timeout=600).returncode == 0
    before = _latest(state)
    (lib / "b" / "late.png").write_bytes(encode(make_image(40, 72, seed=31)))
    killed = subprocess.run(
        [*base, "--stop-before-publish"], env=env, capture_output=True, timeout=600
    )
    assert killed.returncode == -9
    assert _latest(state) == before  # nothing published
    assert (state / "_work").exists()  # its work is there, unpublished
    done = subprocess.run(base, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    after = _summary(state)
    assert after["counts"]["new"] == 1 and after["counts"]["scored"] == 1
    assert not (state / "_work").exists()
    history = ds.dataset(state / "history", partitioning="hive").to_table().to_pandas()
    assert sorted(history.groupby("run_id").size().tolist()) == [1, 6]  # no half run


@pytest.mark.slow  # several audit runs
def test_a_damaged_state_names_the_file_and_full_rebuilds_it(
    spark, audit, weights_dir, tmp_path, capsys
):
    """Once: a truncated _LATEST, snapshot file or summary.json was an internal error with a
    traceback naming no file, and --full did not get past it."""
    lib = _library(tmp_path / "lib", 4)
    state = tmp_path / "state"
    args = _args(lib, state, weights_dir)
    assert audit(args, spark=spark) == 0
    first = _latest(state)["run_id"]
    summary = state / "runs" / first / "summary.json"
    summary.write_text(summary.read_text()[:40])  # an earlier run's summary: a lost trend point
    assert audit(args, spark=spark) == 0
    out = capsys.readouterr()
    assert "summary.json is unreadable" in out.out + out.err
    latest = state / "_LATEST"
    good = latest.read_text()
    latest.write_text(good[:30])
    assert audit(args, spark=spark) == 3
    err = capsys.readouterr().err
    assert "_LATEST is unreadable" in err and "--full" in err and "Traceback" not in err
    assert not (state / "_OWNER.json").exists()  # the failed run let go of the state
    assert audit([*args, "--full"], spark=spark) == 0
    rebuilt = _latest(state)
    assert len(rebuilt["runs"]) == 3 and rebuilt["runs"][:2] == json.loads(good)["runs"]
    part = next((state / rebuilt["snapshot"]).glob("part-*.parquet"))
    part.write_bytes(part.read_bytes()[:100])
    assert audit(args, spark=spark) == 3
    err = capsys.readouterr().err
    assert "snapshot" in err and "unreadable" in err and "Traceback" not in err
    assert audit([*args, "--full"], spark=spark) == 0
    assert _summary(state)["counts"]["library"] == 4 and len(_snapshot(state)) == 4


def test_a_live_lease_refuses_with_exit_3_and_a_dead_one_is_taken_over(
    spark, audit, weights_dir, tmp_path, capsys
):
    lib = _library(tmp_path / "lib", 3)
    state = tmp_path / "state"
    args = _args(lib, state, weights_dir)
    assert audit(args, spark=spark) == 0
    latest = (state / "_LATEST").read_text()
    owner = state / "_OWNER.json"
    now = time.time()
    other = {"host": "ip-10-0-3-17.ec2.internal", "pid": 4242, "token": "t"}
    owner.write_text(json.dumps({**other, "started": now - 3 * 3600, "renewed": now - 20}))
    assert audit(args, spark=spark) == 3  # a run on another host, still renewing: could not run
    err = capsys.readouterr().err
    assert "holds" in err and "since" in err and "ip-10-0-3-17" in err and "Traceback" not in err
    assert (state / "_LATEST").read_text() == latest and owner.exists()
    # that driver was killed 10 minutes ago: its lease is dead, its leftovers go
    owner.write_text(json.dumps({**other, "started": now - 3600, "renewed": now - 600}))
    (state / "_work" / "20261206T020000-000001").mkdir(parents=True)
    assert audit(args, spark=spark) == 0
    assert not owner.exists() and not (state / "_work").exists()
    # a record never renewed counts from its start
    owner.write_text(json.dumps({**other, "started": now - 600}))
    assert audit(args, spark=spark) == 0
    assert len(_latest(state)["runs"]) == 3


def test_night_two_names_what_changed_and_writes_its_outcome(
    spark, audit, weights_dir, tmp_path, capsys, s3_server
):
    from deepiqa_core.cli import main as deepiqa

    lib = _library(tmp_path / "lib", 6)
    state = tmp_path / "state"
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    rules = ["--alert", "library>0", "--alert", "worse(-1000)>0", "--alert", "worse(1000)>0"]
    rules += ["--alert", "new_below(1e9)>0"]
    args = [str(lib), "--state", str(state), "--weights", nr, *rules]
    assert audit(args, spark=spark) == 1  # library>0 and new_below fire on the first night
    first = _summary(state)
    first_run = first["run_id"]
    assert first["outcome"] == "alert" and first["changes"]["new"]["count"] == 6
    assert [(a["rule"], a["status"]) for a in first["alerts"] if a["fired"]] == [
        ("library>0", "new"),
        ("new_below(1e9)>0", "new"),
    ]
    before = _snapshot(state).set_index("uri")["score"]
    files = sorted(lib.rglob("img*.png"))
    changed, removed, broken = files[0], files[1], files[2]
    changed.write_bytes(encode(make_image(40, 72, seed=99)))
    removed.unlink()
    broken.write_bytes(b"no longer an image")
    (lib / "a" / "img100.png").write_bytes(encode(make_image(40, 72, seed=100)))
    capsys.readouterr()
    assert audit(args, spark=spark) == 1
    second = _summary(state)
    changes = second["changes"]
    assert {k: v["count"] for k, v in changes.items()} == {
        "new": 1,
        "changed": 1,
        "removed": 1,
        "newly_failing": 1,
        "recovered": 0,
    }
    after = _snapshot(state).set_index("uri")["score"]
    (row,) = changes["changed"]["rows"]
    uri = row["uri"]
    assert Path(uri.removeprefix("file:")).name == changed.name
    assert row["before"] == pytest.approx(before[uri], abs=1e-3)
    assert row["score"] == pytest.approx(after[uri], abs=1e-3)
    assert row["drop"] == pytest.approx(before[uri] - after[uri], abs=1e-3)  # higher is better
    assert changes["newly_failing"]["rows"][0]["error_code"] == "decode_error"
    assert Path(changes["removed"]["rows"][0]["uri"].removeprefix("file:")).name == removed.name
    status = {a["rule"]: (a["fired"], a["status"], a["since_run"]) for a in second["alerts"]}
    assert status == {
        "library>0": (True, "firing", first_run),
        "worse(-1000)>0": (True, "new", second["run_id"]),
        "worse(1000)>0": (False, "ok", None),
        "new_below(1e9)>0": (True, "firing", first_run),
    }
    assert second["arguments"]["alerts"] == rules[1::2]  # the rules used, as written
    html = (state / "runs" / second["run_id"] / "report.html").read_text()
    section = html[html.index("What changed since the previous run") :]
    assert 'id="changed-gallery"' in section and "data:image/jpeg" in section
    table = section[section.index('id="changes-changed"') :]
    assert changed.name in table[: table.index("</table>")]
    assert "firing since run <code>" + first_run in html
    # where a scheduler looks: _OUTCOME, the run's _ALERT, and `deepiqa outcome`
    outcome = json.loads((state / "_OUTCOME").read_text())
    assert (outcome["outcome"], outcome["exit_code"], outcome["run_id"]) == (
        "alert",
        1,
        second["run_id"],
    )
    assert json.loads((state / "runs" / second["run_id"] / "_ALERT").read_text())[0]["fired"]
    assert not (state / "runs" / first_run / "_ALERT").exists() or first["alerted"]
    capsys.readouterr()
    assert deepiqa(["outcome", str(state), "--max-age-hours", "1"]) == 1
    line = capsys.readouterr().out
    assert line.startswith("ALERT:") and f"firing since run {first_run}" in line
    # the report where a browser opens it: a presigned link to an HTML object on S3
    assert deepiqa(["report", str(state), "--publish", "s3://media/reports/nightly/"]) == 0
    printed = capsys.readouterr().out
    link = next(ln.split("open: ", 1)[1] for ln in printed.splitlines() if "open: " in ln)
    from moto.core.authorization import disable_iam_authentication

    # moto's IAM checks need an Authorization header, which a presigned link has not (it signs
    # in the query string): IAM is off for the browser's GET, which is anonymous otherwise
    with disable_iam_authentication(), urllib.request.urlopen(link, timeout=30) as page:
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.read() == (state / "runs" / second["run_id"] / "report.html").read_bytes()
    assert "X-Amz-Signature=" in link and "X-Amz-Expires=604800" in link  # SigV4, 7 days
    assert f"s3://media/reports/nightly/{second['run_id']}/report.html" in printed
    assert "s3://media/reports/nightly/latest.html" in printed
    assert deepiqa(["report", str(tmp_path / "nothing"), "--publish", "s3://media/r/"]) == 2
    capsys.readouterr()
    # a run that could not be done says so in _OUTCOME; a clean night says ok
    latest = state / "_LATEST"
    good = latest.read_text()
    latest.write_text(good[:20])
    assert audit(args[:5], spark=spark) == 3
    assert json.loads((state / "_OUTCOME").read_text())["outcome"] == "failed"
    assert deepiqa(["outcome", str(state)]) == 3
    assert "FAILED" in capsys.readouterr().out
    latest.write_text(good)
    assert audit(args[:5], spark=spark) == 0
    assert json.loads((state / "_OUTCOME").read_text())["outcome"] == "ok"
    assert deepiqa(["outcome", str(state), "--max-age-hours", "1"]) == 0
    stale = json.loads((state / "_OUTCOME").read_text())
    stale["finished_at"] = "2026-01-01T02:00:00Z"
    (state / "_OUTCOME").write_text(json.dumps(stale))
    assert deepiqa(["outcome", str(state), "--max-age-hours", "20"]) == 3


@pytest.mark.slow
def test_spark_submit_finds_weights_shipped_with_files_in_client_mode(weights_dir, tmp_path):
    """The Airflow DAG's form: --files /path/NAME and --weights NAME, the driver running in a
    folder where NAME is not (client mode): the shipped copy is used."""
    lib = _library(tmp_path / "lib", 2)
    state = tmp_path / "state"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    shipped = tmp_path / "models" / "nightly.safetensors"
    shipped.parent.mkdir()
    shipped.write_bytes((weights_dir / "wadiqam-nr.safetensors").read_bytes())
    done = spark_submit(
        "local[2]",
        "--files",
        str(shipped),
        str(JOBS / "audit.py"),
        str(lib),
        "--state",
        str(state),
        "--weights",
        "nightly.safetensors",
        cwd=elsewhere,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert json.loads((state / "_OUTCOME").read_text())["outcome"] == "ok"
    assert _summary(state)["counts"]["scored"] == 2


@pytest.mark.slow
def test_the_suggested_alerts_stay_quiet_on_the_clean_bundled_samples(spark, audit, tmp_path):
    """The README's and every recipe's rules, with the shipped NR default, on the bundled
    clean photos: no alert on the first night, none on an unchanged second night."""
    from deepiqa_core.defaults import SAMPLES

    from .test_schedulers import ALERTS

    lib = tmp_path / "lib"
    shutil.copytree(SAMPLES / "nr", lib)
    args = [str(lib), "--state", str(tmp_path / "state")]
    for rule in ALERTS:
        args += ["--alert", rule]
    assert audit(args, spark=spark) == 0
    assert audit(args, spark=spark) == 0
    summary = _summary(state=tmp_path / "state")
    assert [a["fired"] for a in summary["alerts"]] == [False] * len(ALERTS)


def _s3_json(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket="media", Key=key)["Body"].read())


@pytest.mark.slow  # four audit runs, two of them in their own spark-submit-like processes
def test_a_state_on_plain_s3_two_nights_a_kill_and_a_resume(
    spark, audit, weights_dir, tmp_path, s3_server, s3_listing_prefixes
):
    """--state s3://… where Spark has no S3 connector: small files by boto3, the snapshot
    imported and the history/snapshot exported by executor-side readers and writers, _LATEST
    last. Once refused as a usage error ('this Spark has no file system for it')."""
    import boto3
    import pyarrow.fs as pafs

    from deepiqa_core.cli import main as deepiqa
    from deepiqa_core.spark.publish import staging_folder

    s3 = boto3.client("s3")
    for i in range(6):
        data = encode(make_image(40, 72, seed=i))
        s3.put_object(Bucket="media", Key=f"night-lib/{'ab'[i % 2]}/img{i}.png", Body=data)
    state, key = "s3://media/audit-state/nightly", "audit-state/nightly"
    nr = str(weights_dir / "wadiqam-nr.safetensors")
    args = ["s3://media/night-lib/", "--state", state, "--weights", nr]

    assert audit(args, spark=spark) == 0  # night 1, in this process's Spark
    first = _s3_json(s3, f"{key}/_LATEST")
    summary = _s3_json(s3, f"{key}/runs/{first['run_id']}/summary.json")
    assert summary["counts"]["new"] == 6 and summary["report"].startswith(state)
    assert _s3_json(s3, f"{key}/_OUTCOME")["outcome"] == "ok"

    # night 2: one replaced, one deleted, one added; the first try is killed before it commits
    s3.put_object(Bucket="media", Key="night-lib/b/img1.png", Body=encode(make_image(40, 72, 9)))
    s3.delete_object(Bucket="media", Key="night-lib/a/img2.png")
    s3.put_object(Bucket="media", Key="night-lib/b/img7.png", Body=encode(make_image(40, 72, 7)))
    base = [sys.executable, str(JOBS / "audit.py"), *args]
    killed = subprocess.run([*base, "--stop-before-publish"], capture_output=True, timeout=600)
    assert killed.returncode == -9
    assert _s3_json(s3, f"{key}/_LATEST") == first  # nothing published
    # what a kill in the middle of the export leaves: objects _LATEST does not name
    half = "20991231T000000-000000"
    for leftover in (
        f"history/run_date=2099-12-31/run_id={half}/part-00000-0-x.parquet",
        f"snapshots/{half}/part-00000-0-x.parquet",
        f"runs/{half}/summary.json",
    ):
        s3.put_object(Bucket="media", Key=f"{key}/{leftover}", Body=b"half written")
    done = subprocess.run(base, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    latest = _s3_json(s3, f"{key}/_LATEST")
    assert latest["runs"][0] == first["run_id"] and len(latest["runs"]) == 2
    second = _s3_json(s3, f"{key}/runs/{latest['run_id']}/summary.json")
    c = second["counts"]
    assert (c["changed"], c["new"], c["removed"], c["scored"], c["unchanged"]) == (1, 1, 1, 2, 4)
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="media", Prefix=key)["Contents"]}
    assert not [k for k in listed if half in k or "/_work/" in k]  # the half run is gone
    assert {k.split("/")[3] for k in listed if "/snapshots/" in k} == set(latest["runs"])
    scratch, scratch_root = staging_folder(spark, state)
    assert not scratch.exists(scratch_root)  # the run's Spark work on the default FS, cleared

    # the layout other tools read: pyarrow's own S3 file system, hive partitions
    creds = boto3.session.Session().get_credentials()
    fs = pafs.S3FileSystem(
        access_key=creds.access_key,
        secret_key=creds.secret_key,
        endpoint_override=s3_server["url"],
        region="us-east-1",
    )
    history = ds.dataset(f"media/{key}/history", filesystem=fs, partitioning="hive").to_table()
    per_run = history.to_pandas().groupby("run_id").size().to_dict()
    assert per_run == {first["run_id"]: 6, latest["run_id"]: 3}  # 2 scored + 1 removed
    snap = ds.dataset(f"media/{key}/{latest['snapshot']}", filesystem=fs).to_table().to_pandas()
    assert len(snap) == 7 and snap["removed"].sum() == 1
    replaced = snap.set_index("uri").loc["s3://media/night-lib/b/img1.png"]
    assert replaced["run_id"] == latest["run_id"] and replaced["score"] == pytest.approx(
        second["changes"]["changed"]["rows"][0]["score"], abs=1e-3
    )
    # night 3 in this process: nothing changed, nothing scored, every score carried forward
    assert audit(args, spark=spark) == 0
    third = _s3_json(s3, f"{key}/runs/{_s3_json(s3, f'{key}/_LATEST')['run_id']}/summary.json")
    assert third["counts"]["scored"] == 0 and third["counts"]["unchanged"] == 6
    assert third["library_stats"]["median"] == second["library_stats"]["median"]
    assert deepiqa(["outcome", state, "--max-age-hours", "1"]) == 0
    # a damaged snapshot object is named; --full rebuilds from the history on S3
    snap_key = next(
        o["Key"]
        for o in s3.list_objects_v2(Bucket="media", Prefix=f"{key}/snapshots/")["Contents"]
        if _s3_json(s3, f"{key}/_LATEST")["run_id"] in o["Key"] and o["Key"].endswith(".parquet")
    )
    s3.put_object(Bucket="media", Key=snap_key, Body=b"PAR1 truncated")
    assert audit(args, spark=spark) == 3
    assert _s3_json(s3, f"{key}/_OUTCOME")["outcome"] == "failed"
    assert audit([*args, "--full"], spark=spark) == 0
    rebuilt = _s3_json(s3, f"{key}/runs/{_s3_json(s3, f'{key}/_LATEST')['run_id']}/summary.json")
    assert rebuilt["counts"]["library"] == 6 and rebuilt["library_stats"] == third["library_stats"]
