"""One training run over a prepared examples folder: the function every process executes.

``train_worker(job)`` is what ``TorchDistributor`` starts in each process (DDP over gloo on CPU
or NCCL on GPU; rank, world size and rendezvous come from its environment) and what the
single-process path calls directly. Layout of ``job.data_dir``: ``train/``, ``val/``, ``test/``
Parquet examples (``examples.EXAMPLE_COLUMNS``). Layout of ``job.run_dir`` afterwards:

  model.safetensors   the best validation epoch's weights, with metadata and held-out metrics
  metrics.jsonl       one JSON line per epoch (loss, val SROCC/PLCC, seconds)
  checkpoints/        epoch-NNNNN.pt every ``checkpoint_every`` epochs (``--resume`` reads them)
  report.json         validation and test evaluation (overall, per dataset, per distortion type)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..batch import BatchConfig, BatchScorer
from ..devices import resolve_device
from ..evaluation import evaluate_predictions
from ..models import DeepIQA, get_variant
from ..scoring import Scorer
from ..seeding import derive_seed
from ..weights import WeightsMeta, load_weights, save_weights
from .loop import FitConfig, FitResult, fit
from .petastorm_source import PetastormSource

if TYPE_CHECKING:
    import pandas as pd

MODEL_FILE = "model.safetensors"
REPORT_FILE = "report.json"


@dataclass
class TrainJob:
    data_dir: str
    run_dir: str
    variant: str
    fit: FitConfig
    meta: dict  # WeightsMeta fields: score meaning, data, source
    use_gpu: bool
    init_weights: str | None
    resume: bool
    shuffle_buffer: int
    reader_workers: int
    threads: int | None
    eval_batch_rows: int = 32


def parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    if not folder.is_dir():
        return 0
    files = sorted(p for p in folder.glob("*.parquet"))
    return sum(pq.ParquetFile(p).metadata.num_rows for p in files)


def score_examples(
    model: DeepIQA, folder: Path, device: torch.device, batch_rows: int = 32
) -> pd.DataFrame:
    """Full-grid scores for an examples folder: its manifest columns plus ``prediction``."""
    import pandas as pd
    import pyarrow.parquet as pq

    scorer = BatchScorer(Scorer(model, device=device), model.variant.name, "", BatchConfig())
    parts = []
    for path in sorted(folder.glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            frame = batch.to_pandas()
            scored = scorer.score_frame(frame)
            frame["prediction"] = scored["score"].to_numpy()
            parts.append(frame.drop(columns=["image", "ref_image"]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def evaluate_folder(
    model: DeepIQA, folder: Path, device: torch.device, direction: str, batch_rows: int
) -> dict:
    frame = score_examples(model, folder, device, batch_rows)
    return evaluate_predictions(frame, model_direction=direction)


def _join_the_group(job: TrainJob) -> tuple[int, int, torch.device]:
    """(world size, this process's rank, its device): the process group joined when there are
    several (TorchDistributor's environment), torch's threads and the GPU set."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if job.use_gpu else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if job.threads:
        torch.set_num_threads(job.threads)
    device = resolve_device("cuda" if job.use_gpu else "cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return world, rank, device


def train_worker(job: TrainJob) -> dict:
    """Train (or resume), then on rank 0 save the best model and evaluate the held-out splits.

    Returns the run's summary on every rank (TorchDistributor hands back one rank's value).
    """
    import torch.distributed as dist

    world, rank, device = _join_the_group(job)
    data, run_dir = Path(job.data_dir), Path(job.run_dir)
    variant = get_variant(job.variant)
    direction = job.meta.get("score_direction", "higher_better")
    torch.manual_seed(derive_seed("init", job.fit.seed))  # DDP then copies rank 0's anyway
    model = load_weights(job.init_weights)[0] if job.init_weights else DeepIQA(variant)
    model.calibration = None  # trained and evaluated on the labels' own scale
    source = PetastormSource(
        data / "train",
        full_reference=variant.full_reference,
        patches_per_image=job.fit.patches_per_image,
        batch_images=job.fit.batch_images,
        seed=job.fit.seed,
        rank=rank,
        world=world,
        shuffle_buffer=job.shuffle_buffer,
        reader_workers=job.reader_workers,
    )
    validate = None
    if rank == 0 and parquet_rows(data / "val"):

        def validate(m: DeepIQA) -> dict:
            overall = evaluate_folder(m, data / "val", device, direction, job.eval_batch_rows)[
                "overall"
            ]
            return {"srocc": overall.get("srocc"), "plcc": overall.get("plcc")}

    steps = parquet_rows(data / "train") // max(1, world * job.fit.batch_images)
    result = fit(
        model,
        source,
        job.fit,
        device=device,
        run_dir=run_dir,
        validate=validate,
        resume=job.resume,
        steps_hint=steps,
        log=lambda text: print(f"deepiqa train: {text}", flush=True),
    )
    summary = None
    if rank == 0:
        summary = _finish(job, result, device, direction)
    if world > 1:
        box = [summary]
        dist.broadcast_object_list(box, src=0)
        summary = box[0]
        dist.destroy_process_group()
    assert summary is not None  # rank 0's, broadcast to every rank
    return summary


def _finish(job: TrainJob, result: FitResult, device: torch.device, direction: str) -> dict:
    data, run_dir = Path(job.data_dir), Path(job.run_dir)
    reports = {
        split: evaluate_folder(result.model, data / split, device, direction, job.eval_batch_rows)
        for split in ("val", "test")
        if parquet_rows(data / split)
    }
    headline = {
        f"{split}_{key}": report["overall"].get(key)
        for split, report in reports.items()
        for key in ("srocc", "plcc", "krocc")
    }
    metrics = {
        **headline,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
    }
    meta = WeightsMeta(variant=job.variant, **{**job.meta, "metrics": metrics})
    save_weights(result.model.cpu(), run_dir / MODEL_FILE, meta)
    summary = {
        "model": str(run_dir / MODEL_FILE),
        **metrics,
        "history": result.history,
        "fit": asdict(job.fit),
    }
    (run_dir / REPORT_FILE).write_text(json.dumps({**summary, "reports": reports}, indent=2))
    return summary
