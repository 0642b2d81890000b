"""The scoring job at scale on local[2], run by hand: framework overhead per row and driver memory.

Rows are made as cheap as possible, so what is measured is the job, not the network:

* ``tiny``: a Parquet manifest of N rows (unique ids) pointing at 1,000 distinct 32x32 PNGs
  (one patch each);
* ``missing``: a manifest of N URIs that do not exist (read, fail, ``missing``): no decoding and
  no network, only Spark, Arrow, pandas and Python per row.

For each case and N, one ``spark-submit --master local[2] jobs/score.py`` run is timed; the
CPU seconds of the whole process tree (sampled from /proc) divided by N is the cost per row;
the driver JVM's and the driver Python's peak resident memory are sampled from /proc every
0.2 s, and the driver JVM's old generation in use (``jstat -gc``: what the driver keeps; its
resident size also counts heap the JVM grew and has not given back); the output's file count
and sizes are read back. The fixed start-up cost (JVM, Spark,
Python workers) is in every run: the cost of one more row is the slope between two sizes.

    python benchmarks/bench_scale.py --rows 10000 100000 1000000 --cases tiny missing

``--live-every 30`` also reads the driver's *live* heap (after a full GC) and its top classes
every 30 s: the old generation's peak counts garbage the collector has not reached yet.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def tiny_pngs(folder: Path, count: int = 1000) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "PNG")
        path = folder / f"{i:04d}.png"
        path.write_bytes(buf.getvalue())
        paths.append(str(path))
    return paths


def manifest(path: Path, rows: int, case: str, pool: list[str]) -> None:
    ids = [f"r{i:08d}" for i in range(rows)]
    if case == "tiny":
        uris = [pool[i % len(pool)] for i in range(rows)]
    else:
        uris = [f"{path.parent}/absent/{i:08d}.png" for i in range(rows)]
    pd.DataFrame({"id": ids, "uri": uris}).to_parquet(path, index=False)


class TreeSampler:
    """Samples a process tree from /proc every 0.2 s: the peak resident memory (MiB) of the
    driver JVM and of the driver Python, and the CPU seconds of every process that took part
    (Python workers are forked by a daemon the JVM does not wait for, so ``RUSAGE_CHILDREN``
    would miss them)."""

    def __init__(self, root_pid: int, live_every: float = 0.0):
        self.root = root_pid
        self.peak = {"driver_jvm_mib": 0, "driver_python_mib": 0}
        self.live_every = live_every
        self.live: list[tuple[float, float]] = []  # (seconds, live heap MiB) after a full GC
        self.histogram: list[str] = []
        self._started = time.perf_counter()
        self._next_live = live_every
        self.cpu: dict[int, float] = {}
        self.role: dict[int, str] = {}  # which part of the job a process is (CPU by role)
        self._tick = os.sysconf("SC_CLK_TCK")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        found, frontier = [self.root], [self.root]
        while frontier:
            pid = frontier.pop()
            kids = []
            try:
                tasks = list(Path(f"/proc/{pid}/task").iterdir())  # a JVM forks from any thread
            except OSError:  # the process has just ended
                continue
            for task in tasks:
                try:
                    kids += [int(k) for k in (task / "children").read_text().split()]
                except OSError:
                    continue
            found += kids
            frontier += kids
        return found

    def _sample(self, pid: int) -> None:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = Path(f"/proc/{pid}/status").read_text()
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return
        self.cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        if cmd.strip():  # a process that has ended reads an empty cmdline: keep its role
            self.role[pid] = _role(cmd)  # spark-submit starts as a script, then execs java
        role = self.role.get(pid, "other")
        rss_lines = [ln for ln in status.splitlines() if ln.startswith("VmRSS")]
        rss = int(rss_lines[0].split()[1]) // 1024 if rss_lines else 0  # none: a zombie
        if role == "jvm" and "deploy.SparkSubmit" in cmd:
            key = "driver_jvm_mib"
            self._heap(pid, cmd.split(" ", 1)[0])
        elif role == "driver_python":
            key = "driver_python_mib"
        else:
            return
        self.peak[key] = max(self.peak[key], rss)

    def _heap(self, pid: int, java: str) -> None:
        """The driver JVM's old generation in use (jstat): what it keeps, unlike its resident
        size, which follows the heap the JVM has grown to, live or not."""
        jstat = str(Path(java).with_name("jstat"))
        try:
            out = subprocess.run([jstat, "-gc", str(pid)], capture_output=True, text=True).stdout
            head, values = out.split("\n")[:2]
            used = dict(zip(head.split(), values.split(), strict=False))["OU"]
        except (OSError, ValueError, KeyError):
            return
        mib = int(float(used) / 1024)
        self.peak["driver_old_gen_mib"] = max(self.peak.get("driver_old_gen_mib", 0), mib)
        now = time.perf_counter() - self._started
        if self.live_every and now >= self._next_live:
            self._next_live = now + self.live_every
            self._live(pid, java)

    def _live(self, pid: int, java: str) -> None:
        """What the driver keeps: ``jcmd GC.class_histogram`` runs a full GC first, so its
        total is the live heap (old and young); the top classes say what it is."""
        jcmd = str(Path(java).with_name("jcmd"))
        try:
            out = subprocess.run(
                [jcmd, str(pid), "GC.class_histogram"], capture_output=True, text=True, timeout=60
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return
        total = [ln for ln in out.splitlines() if ln.startswith("Total")]
        if not total:
            return
        live = int(total[0].split()[2]) / 2**20
        self.live.append((round(time.perf_counter() - self._started, 1), round(live, 1)))
        self.histogram = [" ".join(ln.split()[1:4]) for ln in out.splitlines()[2:22]]

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in self._tree():
                self._sample(pid)
            time.sleep(0.2)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        live = {}
        if self.live:
            live = {
                "driver_live_heap_mib": self.live,
                "driver_live_heap_last_mib": self.live[-1][1],
                "driver_histogram_last": self.histogram,
            }
        by_role: dict[str, float] = {}
        for pid, seconds in self.cpu.items():
            role = self.role.get(pid, "other")
            by_role[role] = round(by_role.get(role, 0.0) + seconds, 1)
        return {
            **self.peak,
            **live,
            "cpu_seconds": round(sum(self.cpu.values()), 1),
            "cpu_seconds_by_role": by_role,
        }


def _role(cmd: str) -> str:
    """The driver JVM (in local mode also the executors' JVM side: scan, shuffle, Arrow, write),
    the driver's Python, Spark's Python workers (the pandas UDF's side), or other."""
    exe = cmd.split(" ", 1)[0]
    if exe.endswith("java"):
        return "jvm"
    if "jobs/score.py" in cmd:
        return "driver_python"
    if "pyspark" in cmd or "daemon" in cmd or "worker" in cmd:
        return "python_workers"
    return "other"


def run(table: Path, out: Path, args: argparse.Namespace) -> dict:
    exe = Path(sys.executable).with_name("spark-submit")
    confs = [x for c in ["spark.ui.enabled=false", *args.conf] for x in ("--conf", c)]
    cmd = [
        str(exe),
        *["--master", "local[2]", "--driver-memory", "2g", *confs],
        str(ROOT / "jobs" / "score.py"),
        str(table),
        *["--output", str(out), "--max-error-rate", "1", *args.job_args],
    ]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = TreeSampler(proc.pid, args.live_every)
    log = proc.communicate()[0].decode(errors="replace")
    sampled = sampler.stop()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"job failed ({proc.returncode}):\n{log[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    files = sorted((out / "scores").glob("*.parquet"))
    return {
        "wall_seconds": round(wall, 1),
        "job_seconds": summary["seconds"],
        **sampled,
        "output_files": len(files),
        "output_file_mib": [round(f.stat().st_size / 2**20, 1) for f in files],
        "chunks": summary["chunks"],
        "errors_by_code": summary["errors_by_code"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--cases", nargs="+", default=["tiny", "missing"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--live-every",
        type=float,
        default=0.0,
        help="seconds between full GCs of the driver (jcmd GC.class_histogram) to read its live "
        "heap and top classes (0: never; each costs the driver a pause)",
    )
    parser.add_argument(
        "--conf", action="append", default=[], help="a spark-submit --conf KEY=VALUE (repeatable)"
    )
    parser.add_argument(
        "--job-args", nargs=argparse.REMAINDER, default=[], help="the rest goes to jobs/score.py"
    )
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pool = tiny_pngs(root / "pool")
        for case in args.cases:
            for rows in args.rows:
                table = root / f"{case}-{rows}.parquet"
                manifest(table, rows, case, pool)
                out = root / f"out-{case}-{rows}"
                record = {"case": case, "rows": rows, **run(table, out, args)}
                record["cpu_ms_per_row"] = round(1000 * record["cpu_seconds"] / rows, 3)
                results.append(record)
                print(json.dumps(record), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
