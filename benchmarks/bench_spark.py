"""The Spark job on local[2] against the library's single-process scorer, run by hand.

Same images (synthetic 512x384 JPEGs, NR; and FR pairs), same weights, same machine, one run:

* single process: what the ``deepiqa`` CLI does (threaded decode + ``Scorer``), torch on all cores;
* Spark: ``spark-submit --master local[2] jobs/score.py`` (two Python workers, one core each),
  timed by the job itself (scoring and writing, not JVM start-up); its summary also gives the
  peak memory of a Python worker, measured for several image counts to show it does not grow.

    python benchmarks/bench_spark.py --counts 50 200
Target (issue 4): throughput ratio Spark / single process >= 0.8.
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
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_core import _score_group, synthetic_jpeg  # noqa: E402

from deepiqa_core import Scorer, load_weights, read_image  # noqa: E402
from deepiqa_core.defaults import DEFAULT_WEIGHTS  # noqa: E402
from deepiqa_core.imaging import decode_in_order  # noqa: E402


def make_images(folder: Path, count: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"img{i:04d}.jpg"
        if not path.exists():
            path.write_bytes(synthetic_jpeg(384, 512, seed + i))
        paths.append(path)
    return paths


def single_process(weights: Path, images: list[Path], refs: list[Path] | None) -> float:
    model, _ = load_weights(weights)
    scorer = Scorer(model, device="cpu")
    per_call = max(1, scorer.patch_budget // 192)
    started = time.perf_counter()
    pairs = list(zip(images, refs or [None] * len(images), strict=True))
    load = (
        (lambda p: (read_image(p[0]), read_image(p[1]))) if refs else (lambda p: read_image(p[0]))
    )
    group = []
    for _, decoded in decode_in_order(pairs, load):
        group.append(decoded)
        if len(group) == per_call:
            _score_group(scorer, group)
            group = []
    if group:
        _score_group(scorer, group)
    return len(images) / (time.perf_counter() - started)


def spark_job(weights: Path, folder: Path, ref_folder: Path | None, out: Path) -> dict:
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    cmd = [
        str(Path(sys.executable).with_name("spark-submit")),
        "--master",
        "local[2]",
        "--conf",
        "spark.ui.enabled=false",
        str(ROOT / "jobs" / "score.py"),
        str(folder),
        "--weights",
        str(weights),
        "--output",
        str(out),
        "--overwrite",
    ]
    if ref_folder is not None:
        cmd += ["--ref", str(ref_folder)]
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[50, 200])
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="alternating single/Spark measurements per case; medians reported",
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    results: dict[str, object] = {"torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for count in args.counts:
            images = make_images(root / f"dist{count}", count, seed=0)
            refs_dir = root / f"ref{count}"
            refs = make_images(refs_dir, count, seed=10_000)
            for i in range(count):  # FR pairs by name: img0001__jpeg.jpg -> img0001.jpg
                target = root / f"fr{count}" / f"img{i:04d}__jpeg.jpg"
                target.parent.mkdir(exist_ok=True)
                if not target.exists():
                    target.write_bytes(images[i].read_bytes())
            for kind in ("nr", "fr"):
                weights = DEFAULT_WEIGHTS[kind]
                fr = kind == "fr"
                singles, sparks = [], []
                for _ in range(args.repeats):  # alternate, so drifting machine load hits both
                    singles.append(single_process(weights, images, refs if fr else None))
                    summary = spark_job(
                        weights,
                        root / f"fr{count}" if fr else root / f"dist{count}",
                        refs_dir if fr else None,
                        root / f"out-{kind}-{count}",
                    )
                    sparks.append(summary["images_per_second"])
                single, spark = float(np.median(singles)), float(np.median(sparks))
                record = {
                    "single_process_img_s": round(single, 2),
                    "spark_local2_img_s": round(spark, 2),
                    "ratio": round(spark / single, 3),
                    "single_runs": [round(v, 2) for v in singles],
                    "spark_runs": [round(v, 2) for v in sparks],
                    "worker_peak_rss_mib": summary["worker_peak_rss_mib"],
                    "model_loads": summary["model_loads"],
                    "failed": summary["failed"],
                }
                results[f"{kind}@{count}"] = record
                print(json.dumps({f"{kind}@{count}": record}), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
