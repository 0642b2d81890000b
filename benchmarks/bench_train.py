"""Training throughput, run by hand: the Petastorm reader alone, one process, and Spark DDP.

One synthetic set (photos made here, KADID-style types x 5 levels, weak labels), one machine,
one run; figures are images per second of training (4 images x 32 crops per step by default):

* reader: PetastormSource alone (decode + crops + shuffle), no network;
* single: ``deepiqa train`` in this process (torch on all cores), epoch 1;
* ddp:    ``spark-submit --master local[N] jobs/train.py --num-processes N`` (N processes,
          OMP_NUM_THREADS=1 each, as TorchDistributor sets), epoch 1 as the job logs it.

    python benchmarks/bench_train.py --photos 8 --processes 2
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
sys.path.insert(0, str(ROOT))

from deepiqa_core.cli import main as deepiqa  # noqa: E402
from deepiqa_core.training.options import TrainSpec  # noqa: E402
from deepiqa_core.training.petastorm_source import PetastormSource  # noqa: E402
from deepiqa_core.training.synthetic import generate_local  # noqa: E402


def photo(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [128 + 90 * np.sin(xx / (9 + 3 * c) + yy / (13 + c) + seed) for c in range(3)], -1
    )
    return np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)


def first_epoch(run: Path) -> dict:
    return json.loads((run / "metrics.jsonl").read_text().splitlines()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument(
        "--types", nargs="+", default=["gaussian_blur", "jpeg", "white_noise", "contrast_change"]
    )
    parser.add_argument("--variant", default="wadiqam-nr")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = []
        for i in range(args.photos):
            path = tmp / "photos" / f"p{i}.png"
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(photo(288, 384, i)).save(path)
            paths.append(str(path))
        manifest = generate_local(
            paths, tmp / "set", distortions=args.types, workers=os.cpu_count() or 1
        )
        m = str(tmp / "set/manifest.parquet")
        common = [
            "--manifest",
            m,
            "--variant",
            args.variant,
            "--epochs",
            "1",
            "--split",
            "0.75",
            "0.25",
            "0",
        ]

        assert deepiqa(["train", *common, "--output", str(tmp / "single")]) == 0
        single = first_epoch(tmp / "single")

        source = PetastormSource(
            tmp / "single/data/train",
            full_reference=args.variant.endswith("fr"),
            patches_per_image=32,
            batch_images=4,
            seed=0,
            rank=0,
            world=1,
            shuffle_buffer=TrainSpec.shuffle_buffer,
            reader_workers=TrainSpec.reader_workers,
        )
        started = time.perf_counter()
        images = sum(len(b.labels) for b in source.batches(1))
        reader = images / (time.perf_counter() - started)

        env = {
            **os.environ,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
        }
        exe = Path(sys.executable).with_name("spark-submit")
        n = args.processes
        cmd = [
            str(exe),
            "--master",
            f"local[{n}]",
            "--conf",
            "spark.ui.enabled=false",
            str(ROOT / "jobs/train.py"),
            *common,
            "--num-processes",
            str(n),
            "--output",
            str(tmp / "ddp"),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        ddp = first_epoch(tmp / "ddp")

    figures = {
        "variant": args.variant,
        "train_images": single["images"],
        "total_images": len(manifest),
        "reader_img_s": round(reader, 1),
        "single_img_s": round(single["images"] / single["seconds"], 2),
        f"ddp{n}_img_s": round(ddp["images"] / ddp["seconds"], 2),
        f"ddp{n}_over_single": round(
            (ddp["images"] / ddp["seconds"]) / (single["images"] / single["seconds"]), 2
        ),
        "reader_over_single": round(reader / (single["images"] / single["seconds"]), 1),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
