"""The nightly audit of a large manifest library on local[2], run by hand: night after night.

A Parquet manifest of N rows (``id, uri, etag``; ``--version-column etag``) stands for a media
library: ``--scored-share`` of the rows point at 1,000 distinct 32x32 PNGs (scored), the rest
at files that do not exist (each a ``missing`` row: the cheapest row the audit can have, so the
figures are the audit's own cost, not the network's). Then, one ``spark-submit jobs/audit.py``
per night, timed end to end (JVM start included):

1. night 1: every row is new;
2. night 2: the same manifest: nothing scored, every row carried forward (the quiet night);
3. the baseline: a ``spark-submit`` that only reads the manifest and the latest snapshot and
   joins them on ``id`` (the least an incremental audit must do);
4. ``--nights`` more nights, each with ``--churn`` of the rows given a new etag and
   ``--churn`` / 10 new rows: the cost per night and the state's layout (history partitions,
   snapshots kept, bytes) after each.

    python benchmarks/bench_audit_scale.py --rows 1000000 --nights 30 \\
        --out benchmarks/results/audit-scale-local2-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_audit import published_summary  # this folder is on sys.path (run as a script)
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BASELINE = """
import sys, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.getOrCreate()
started = time.perf_counter()
manifest = spark.read.parquet(sys.argv[1]).select("id", "etag")
snapshot = spark.read.parquet(sys.argv[2]).select("id", "version", "score")
rows = manifest.join(snapshot, "id", "left").where("version is null or version != etag").count()
print("BASELINE", rows, round(time.perf_counter() - started, 2))
"""


def tiny_pngs(folder: Path, count: int = 1000) -> list[str]:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"{i:04d}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


def manifest(rows: int, scored_share: float, pool: list[str], absent: Path) -> pd.DataFrame:
    scored = int(rows * scored_share)
    uris = [pool[i % len(pool)] for i in range(scored)]
    uris += [f"{absent}/{i:08d}.png" for i in range(scored, rows)]
    return pd.DataFrame(
        {"id": [f"r{i:08d}" for i in range(rows)], "uri": uris, "etag": ["v0"] * rows}
    )


def churn(table: pd.DataFrame, night: int, share: float, absent: Path) -> pd.DataFrame:
    """``share`` of the rows get a new etag (re-scored), ``share / 10`` new rows are added."""
    rng = np.random.default_rng(night)
    changed = rng.choice(len(table), size=int(len(table) * share), replace=False)
    table = table.copy()
    table.loc[changed, "etag"] = f"v{night}"
    added = int(len(table) * share / 10)
    new = pd.DataFrame(
        {
            "id": [f"n{night:03d}-{i:07d}" for i in range(added)],
            "uri": [f"{absent}/n{night:03d}-{i:07d}.png" for i in range(added)],
            "etag": ["v0"] * added,
        }
    )
    return pd.concat([table, new], ignore_index=True)


def _submit(args: list[str]) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = [
        str(Path(sys.executable).parent / "spark-submit"),
        *["--master", "local[2]", "--driver-memory", "2g"],
        *["--conf", "spark.ui.showConsoleProgress=false", "--conf", "spark.ui.enabled=false"],
        *args,
    ]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return done, time.perf_counter() - started


def night(table_path: Path, state: Path) -> dict:
    args = [str(ROOT / "jobs" / "audit.py"), str(table_path), "--state", str(state)]
    done, wall = _submit([*args, "--version-column", "etag", "--alert", "median_drop>5"])
    summary = published_summary(done, state)
    return {
        "wall_s": round(wall, 1),
        "job_s": summary["seconds"],
        "counts": summary["counts"],
        "state": layout(state),
    }


def layout(state: Path) -> dict:
    """What the state holds: history partitions (one per run) and files, snapshots kept, bytes."""
    files = [f for f in state.rglob("*") if f.is_file()]
    history, snapshots = state / "history", state / "snapshots"
    return {
        "bytes": sum(f.stat().st_size for f in files),
        "history_partitions": len(list(history.glob("run_date=*/run_id=*"))),
        "history_files": len(list(history.rglob("*.parquet"))),
        "snapshots": len([p for p in snapshots.iterdir() if p.is_dir()])
        if snapshots.exists()
        else 0,
    }


def baseline(table_path: Path, state: Path, tmp: Path) -> dict:
    latest = json.loads((state / "_LATEST").read_text())
    script = tmp / "baseline.py"
    script.write_text(BASELINE)
    snapshot = state / latest["snapshot"]
    done, wall = _submit([str(script), str(table_path), str(snapshot)])
    line = next((x for x in done.stdout.splitlines() if x.startswith("BASELINE")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    _, rows, seconds = line.split()
    return {"wall_s": round(wall, 1), "job_s": float(seconds), "rows_to_score": int(rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--scored-share", type=float, default=0.01)
    p.add_argument("--nights", type=int, default=5, help="churn nights after the quiet one")
    p.add_argument("--churn", type=float, default=0.01)
    p.add_argument("--out", type=Path, help="also write the results here (after every night)")
    args = p.parse_args()
    result: dict = {"rows": args.rows, "machine": f"{os.cpu_count()} cores, local[2]"}
    result.update(scored_share=args.scored_share, churn=args.churn, nights=[])

    def save() -> None:
        print(json.dumps(result["nights"][-1] if result["nights"] else result), flush=True)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2) + "\n")

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        state, table_path, absent = tmp / "state", tmp / "library.parquet", tmp / "absent"
        table = manifest(args.rows, args.scored_share, tiny_pngs(tmp / "pool"), absent)
        table.to_parquet(table_path, index=False)
        result["first"] = night(table_path, state)
        save()
        result["unchanged"] = night(table_path, state)
        save()
        result["baseline"] = baseline(table_path, state, tmp)
        result["unchanged_over_baseline"] = round(
            result["unchanged"]["wall_s"] / result["baseline"]["wall_s"], 2
        )
        save()
        for k in range(1, args.nights + 1):
            table = churn(table, k, args.churn, absent)
            table.to_parquet(table_path, index=False)
            result["nights"].append({"night": k, **night(table_path, state)})
            save()


if __name__ == "__main__":
    main()
