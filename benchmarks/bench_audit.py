"""The nightly audit on local[2], run by hand: a first run over N images vs incremental runs.

N small photos-like PNGs (96x128: 12 patches each) are written to a temporary library; then one
``spark-submit --master local[2] jobs/audit.py`` per step, timed end to end (JVM start included):

1. first run: every image is new;
2. the same library again: nothing scored, every row carried forward;
3. ``--changed`` images rewritten and ``--removed`` deleted: exactly those scored / removed.

The report's size, the state's size and each run's own ``seconds`` (from summary.json) are
recorded; with ``--screenshot`` the last report is rendered by headless Chromium
(``benchmarks/audit_screenshot.py``) so that a person can look at it. Each run's Spark jobs are
counted from its event log (the audit's fixed cost is mostly small jobs).

    python benchmarks/bench_audit.py --images 2000 --out benchmarks/results/audit-local2-cpu.json
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
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_library(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sub = folder / f"shoot{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((128, 96), Image.BICUBIC)
        path = sub / f"img{i:05d}.png"
        img.save(path)
        paths.append(path)
    return paths


def run_audit(library: Path, state: Path, events: Path) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    events.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.showConsoleProgress=false",
        *["--conf", "spark.eventLog.enabled=true", "--conf", f"spark.eventLog.dir={events}"],
        *["--conf", "spark.eventLog.compress=false"],
        str(ROOT / "jobs" / "audit.py"),
        str(library),
        "--state",
        str(state),
        "--alert",
        "median_drop>5",
    ]
    started = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    summary = published_summary(done, state)
    return {
        "wall_s": round(wall, 1),
        "job_s": summary["seconds"],
        "spark_jobs": _spark_jobs(events),
        "exit": done.returncode,
        "counts": summary["counts"],
        "report_bytes": summary["report_bytes"],
        "report": summary["report"],
    }


def published_summary(done: subprocess.CompletedProcess, state: Path) -> dict:
    """The summary.json of the run ``_LATEST`` names, once the audit exited 0 or 1."""
    if done.returncode not in (0, 1):
        raise SystemExit(done.stdout[-3000:] + done.stderr[-3000:])
    latest = json.loads((state / "_LATEST").read_text())
    return json.loads((state / "runs" / latest["run_id"] / "summary.json").read_text())


def _spark_jobs(events: Path) -> int:
    """Spark jobs the run started (its event log's SparkListenerJobStart events)."""
    logs = sorted(events.iterdir(), key=lambda f: f.stat().st_mtime)
    if not logs:
        return 0
    files = sorted(logs[-1].iterdir()) if logs[-1].is_dir() else [logs[-1]]  # Spark 4 rolls
    text = "".join(f.read_text(errors="replace") for f in files)
    return text.count('"Event":"SparkListenerJobStart"')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--changed", type=int, default=20)
    p.add_argument("--removed", type=int, default=5)
    p.add_argument("--out", type=Path)
    p.add_argument("--screenshot", type=Path)
    p.add_argument("--events", type=Path, help="keep the runs' Spark event logs here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        library, state = Path(tmp) / "library", Path(tmp) / "state"
        paths = make_library(library, args.images)
        events = args.events or Path(tmp) / "events"
        runs = {
            "first": run_audit(library, state, events),
            "unchanged": run_audit(library, state, events),
        }
        rng = np.random.default_rng(1)
        for path in paths[: args.changed]:
            noisy = np.asarray(Image.open(path)).astype(int) + rng.integers(-60, 60, (96, 128, 3))
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path)
        for path in paths[-args.removed :]:
            path.unlink()
        runs["changed"] = run_audit(library, state, events)
        size = sum(f.stat().st_size for f in state.rglob("*") if f.is_file())
        result = {"images": args.images, "machine": f"{os.cpu_count()} cores, local[2]", **runs}
        result["state_bytes"] = size
        if args.screenshot:
            report = runs["changed"]["report"].removeprefix("file:")
            shot = [sys.executable, str(ROOT / "benchmarks" / "audit_screenshot.py"), report]
            subprocess.run([*shot, str(args.screenshot)], check=True)
            result["screenshot"] = str(args.screenshot)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
