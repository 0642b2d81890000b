"""The Beam job on the local DirectRunner against the library's single-process scorer, by hand.

Same images (synthetic JPEGs in a temporary folder, NR and FR pairs), same shipped weights, same
machine, one run, alternating measurements (medians reported):

* single process: what ``deepiqa score`` does, ``BatchScorer.score_rows`` over the listed rows
  in this process, torch on all cores (no output written);
* Beam in process: ``run_score_beam`` on the DirectRunner (one SDK worker in this process,
  torch on all cores), timed end to end by the job (listing, staging, the pipeline, the Parquet
  output, reading it back for the summary, publishing);
* Beam with worker processes: ``--direct_running_mode multi_processing``, one worker process
  and one torch thread per core.

    python benchmarks/bench_beam.py --count 200 --size 256 \
        --json benchmarks/results/beam-local-cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_core import synthetic_jpeg  # noqa: E402

from deepiqa_core.batch import BatchScorer  # noqa: E402
from deepiqa_core.beam.pipeline import run_score_beam  # noqa: E402
from deepiqa_core.defaults import DEFAULT_WEIGHTS  # noqa: E402
from deepiqa_core.inputs import image_rows  # noqa: E402
from deepiqa_core.local_scorer import load_scorer  # noqa: E402
from deepiqa_core.options import InputSpec, ScoringOptions  # noqa: E402
from deepiqa_core.runs.beam_spec import BeamExecution, ScoreBeamSpec  # noqa: E402


def make_images(root: Path, count: int, size: int) -> tuple[Path, Path, Path]:
    """NR images, FR distorted images named ``<ref>__copy.jpg``, and their references."""
    nr, fr, refs = root / "nr", root / "fr", root / "ref"
    for folder in (nr, fr, refs):
        folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        data = synthetic_jpeg(size, size, i)
        (nr / f"img{i:04d}.jpg").write_bytes(data)
        (fr / f"img{i:04d}__copy.jpg").write_bytes(data)
        (refs / f"img{i:04d}.jpg").write_bytes(synthetic_jpeg(size, size, 10_000 + i))
    return nr, fr, refs


def single_process(spec: InputSpec, weights: Path) -> float:
    """Images/s of BatchScorer in this process, as ``deepiqa score`` runs it."""
    options = ScoringOptions(device="cpu")
    started = time.perf_counter()
    scorer, meta, sha = load_scorer(weights, options)
    rows = image_rows(spec, scorer.full_reference, meta.variant)
    results = BatchScorer(scorer, meta.variant, sha, options.batch).score_rows(rows)
    assert all(r.error_code is None for r in results), "every benchmark image must score"
    return len(rows) / (time.perf_counter() - started)


def beam(spec: InputSpec, weights: Path, out: Path, workers: int | None) -> dict:
    """One Beam run's ``summary.json`` record."""
    args: tuple[str, ...] = ()
    execution = BeamExecution()
    if workers:
        args = ("--direct_running_mode", "multi_processing", "--direct_num_workers", str(workers))
        execution = BeamExecution(torch_threads=1)
    summary = run_score_beam(
        ScoreBeamSpec(
            inputs=spec,
            weights=weights,
            output=str(out),
            overwrite=True,
            scoring=ScoringOptions(device="cpu"),
            execution=execution,
            pipeline_args=args,
        )
    )
    assert summary.stats.failed == 0 and summary.stats.rows_out == summary.stats.rows_in
    return summary.to_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=256, help="square images, pixels a side")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    cores = os.cpu_count() or 1
    results: dict[str, object] = {
        "machine": f"{cores}-core CPU ({platform.machine()}), torch {torch.__version__}",
        "images": f"{args.count} synthetic {args.size}x{args.size} JPEGs",
        "torch_threads": threads,
        "repeats": args.repeats,
        "load_average_before": round(os.getloadavg()[0], 2),  # other work on the machine
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        nr, fr, refs = make_images(root / "images", args.count, args.size)
        cases = {
            "nr": (InputSpec(str(nr)), DEFAULT_WEIGHTS["nr"]),
            "fr": (InputSpec(str(fr), ref=str(refs)), DEFAULT_WEIGHTS["fr"]),
        }
        for kind, (spec, weights) in cases.items():
            runs: dict[str, list[float]] = {"single": [], "beam": [], "beam_workers": []}
            loads = {}
            for _ in range(args.repeats):  # alternate, so drifting machine load hits all
                runs["single"].append(single_process(spec, weights))
                summary = beam(spec, weights, root / f"out-{kind}", None)
                runs["beam"].append(summary["images_per_second"])
                loads["beam"] = summary["model_loads"]
                torch.set_num_threads(threads)
                summary = beam(spec, weights, root / f"out-{kind}-w", cores)
                runs["beam_workers"].append(summary["images_per_second"])
                loads["beam_workers"] = summary["model_loads"]
            medians = {k: float(np.median(v)) for k, v in runs.items()}
            record = {
                "single_process_img_s": round(medians["single"], 2),
                "beam_direct_img_s": round(medians["beam"], 2),
                "beam_direct_workers_img_s": round(medians["beam_workers"], 2),
                "ratio_beam": round(medians["beam"] / medians["single"], 3),
                "ratio_beam_workers": round(medians["beam_workers"] / medians["single"], 3),
                "runs": {k: [round(x, 2) for x in v] for k, v in runs.items()},
                "model_loads": loads,
                "workers": cores,
            }
            results[kind] = record
            print(json.dumps({kind: record}), flush=True)
    results["load_average_after"] = round(os.getloadavg()[0], 2)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
