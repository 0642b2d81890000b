"""Command-line options of a training run, shared by ``deepiqa train`` and ``jobs/train.py``.

One definition, so the single-process command and the Spark job take the same flags and
document them the same way in ``--help``.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..models import VARIANTS, get_variant
from .loop import FitConfig
from .prepare import REJECTED, check_prepared, label_meta, prepared_record, with_splits
from .run import TrainJob

if TYPE_CHECKING:
    import pandas as pd

DATA_DIR = "data"

EPILOG = """\
data: --manifest takes a manifest table (Parquet or CSV; see deepiqa_core.datasets.manifest:
  id, uri, ref_uri, ref_id, score, score_direction, score_min, score_max, dataset, distortion,
  level), as written by `deepiqa dataset` or `deepiqa synthesize`; --dataset NAME=ROOT reads a
  published dataset folder directly (live, tid2013, kadid10k, csiq, clive, koniq10k).

protocol (defaults = the paper): Adam lr 1e-4, 4 images x 32 random 32x32 crops per step, L1
  loss (per patch for DIQaM, on the weighted image score for WaDIQaM), dropout 0.5, splits by
  reference 60/20/20 (seeded), model selection on validation SROCC.

run folder (--output): model.safetensors (best epoch, with metadata and held-out metrics),
  metrics.jsonl (one line per epoch), report.json (validation/test: overall, per dataset, per
  distortion type), checkpoints/ (every --checkpoint-every epochs), data/ (the prepared
  examples). After a crash or kill, run the same command with --resume: training continues
  from the last checkpoint and ends with the same weights as an uninterrupted run (CPU).
"""


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--manifest PATH or --dataset NAME=ROOT (read with ``load_training_manifest``)."""
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--manifest", type=Path, help="manifest table (Parquet or CSV)")
    data.add_argument("--dataset", metavar="NAME=ROOT", help="a published dataset's folder")


def add_synthesis_arguments(parser: argparse.ArgumentParser) -> None:
    """The synthetic set's options, shared by ``deepiqa synthesize`` and jobs/synthesize.py."""
    from .distortions import DISTORTIONS, LEVELS
    from .synthetic import DEFAULT_LONG_SIDE

    parser.add_argument(
        "--distortions",
        nargs="+",
        default=list(DISTORTIONS),
        metavar="TYPE",
        help="default: all 25 (" + ", ".join(DISTORTIONS) + ")",
    )
    parser.add_argument("--levels", nargs="+", type=int, default=list(LEVELS))
    parser.add_argument("--seed", type=int, default=0, help="same seed, same pixels and labels")
    parser.add_argument(
        "--long-side", type=int, default=DEFAULT_LONG_SIDE, help="photos are resized to this"
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--output", type=Path, required=True, help="run folder (see below)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="wadiqam-fr")
    parser.add_argument("--epochs", type=int, default=100, help="passes over the training split")
    parser.add_argument("--batch-images", type=int, default=4, help="images per step (paper: 4)")
    parser.add_argument("--patches-per-image", type=int, default=32, help="crops per image (32)")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (1e-4)")
    parser.add_argument("--seed", type=int, default=0, help="seeds splits, crops, shuffles, init")
    parser.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=(0.6, 0.2, 0.2),
        metavar=("TRAIN", "VAL", "TEST"),
        help="fractions of references per split (0.6 0.2 0.2); ignored when the manifest has "
        "its own 'split' column (train/val/test)",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=1, help="epochs between checkpoints"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument("--max-seconds", type=float, help="stop after this much training time")
    parser.add_argument("--init", type=Path, help="start from these weights (fine-tuning)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--rows-per-file", type=int, default=64, help="examples per Parquet file")
    parser.add_argument("--shuffle-buffer", type=int, default=256, help="rows mixed across files")
    parser.add_argument(
        "--reader-workers",
        type=int,
        default=0,
        help="Petastorm reader threads; 0 = in the training thread, reproducible order (default)",
    )
    parser.add_argument("--threads", type=int, help="torch threads per process")


def load_training_manifest(args: argparse.Namespace) -> pd.DataFrame:
    from ..datasets import read_dataset, read_manifest

    if args.manifest is not None:
        return read_manifest(args.manifest)
    name, sep, root = args.dataset.partition("=")
    if not sep:
        raise ValueError(f"--dataset takes NAME=ROOT, got {args.dataset!r}")
    return read_dataset(name, root)


def check_run_dir(args: argparse.Namespace) -> Path:
    """The run folder; an existing one needs --resume (continue) or --overwrite (start over)."""
    run_dir = args.output.absolute()
    if run_dir.exists() and any(run_dir.iterdir()):
        if args.overwrite and not args.resume:
            shutil.rmtree(run_dir)
        elif not args.resume:
            raise FileExistsError(f"{run_dir} exists; pass --resume to continue it or --overwrite")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


@dataclass
class Plan:
    """A run's inputs, decided on the driver before any data is fetched."""

    run_dir: Path
    data_dir: Path
    manifest: pd.DataFrame  # with row_id and split
    record: dict  # what data_dir/prepared.json must say
    meta: dict  # the labels' meaning, for the weights file
    label_mean: float
    training_data: str


def plan_run(args: argparse.Namespace) -> Plan:
    manifest = load_training_manifest(args)
    split_manifest = with_splits(manifest, tuple(args.split), args.seed)
    train = split_manifest[split_manifest["split"] == "train"]
    if train.empty:
        raise ValueError("the training split is empty: add references or change --split")
    full_reference = get_variant(args.variant).full_reference
    record = prepared_record(manifest, list(args.split), args.seed, full_reference)
    run_dir = check_run_dir(args)
    datasets = "+".join(sorted(manifest["dataset"].astype(str).unique()))
    split_text = (
        "splits from the manifest's split column"
        if "split" in manifest.columns
        else f"references split {'/'.join(f'{f:g}' for f in args.split)}, seed {args.seed}"
    )
    training_data = (
        f"{datasets}: {len(train)} training images from {train['ref_id'].nunique()} references "
        f"({split_text}); "
        f"manifest sha256 {record['manifest_sha256'][:16]}"
    )
    return Plan(
        run_dir=run_dir,
        data_dir=run_dir / DATA_DIR,
        manifest=split_manifest,
        record=record,
        meta=label_meta(manifest),
        label_mean=float(train["score"].mean()),
        training_data=training_data,
    )


def prepared_data(plan: Plan, prepare: Callable[[], dict]) -> dict:
    """The data folder's preparation record: reused when it matches (a resumed run), else made
    by ``prepare`` (Spark or this process). A run without one usable training image stops here."""
    record = check_prepared(plan.data_dir, plan.record)
    if record is None:
        shutil.rmtree(plan.data_dir, ignore_errors=True)  # a preparation cut short: redo it
        plan.data_dir.mkdir(parents=True)
        record = prepare()
    if not record["rows"]["train"]:
        raise ValueError(f"no usable training images (see {plan.data_dir / REJECTED})")
    return record


def build_job(args: argparse.Namespace, plan: Plan, use_gpu: bool) -> TrainJob:
    fit = FitConfig(
        epochs=args.epochs,
        batch_images=args.batch_images,
        patches_per_image=args.patches_per_image,
        lr=args.lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        max_seconds=args.max_seconds,
        bf16=args.bf16,
        initial_bias=None if args.init else plan.label_mean,
    )
    command = " ".join(shlex.quote(a) for a in sys.argv)
    return TrainJob(
        data_dir=str(plan.data_dir),
        run_dir=str(plan.run_dir),
        variant=args.variant,
        fit=fit,
        meta={
            **plan.meta,
            "training_data": plan.training_data,
            "source": f"trained with: {command}",
            "description": f"{args.variant} trained by deepiqa",
        },
        use_gpu=use_gpu,
        init_weights=str(args.init) if args.init else None,
        resume=args.resume,
        shuffle_buffer=args.shuffle_buffer,
        reader_workers=args.reader_workers,
        threads=args.threads,
    )
