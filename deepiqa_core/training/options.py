"""A training run's specification, and the command-line flags that build it.

``TrainSpec`` (frozen) is built once from the parsed flags by ``train_spec``; everything after
that (planning, Spark, the training processes) takes the spec, never an ``argparse.Namespace``.
The flags' defaults are read from ``FitConfig`` and ``TrainSpec``, so they are defined once, and
``deepiqa train`` and ``jobs/train.py`` take the same flags and document them the same way.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..datasets.splits import DEFAULT_FRACTIONS
from ..devices import DEVICE_CHOICES_HELP
from ..errors import OutputExistsError, UsageError
from ..exits import ExitCode
from ..models import VARIANTS, get_variant
from ..outputs import check_replaceable, check_separate, write_marker
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


@dataclass(frozen=True)
class DataSource:
    """Where a run's manifest comes from: a manifest table, or a published dataset's folder."""

    manifest: Path | None = None
    dataset: str | None = None  # NAME=ROOT

    def load(self) -> pd.DataFrame:
        from ..datasets import read_dataset, read_manifest

        if self.manifest is not None:
            return read_manifest(self.manifest)
        name, sep, root = (self.dataset or "").partition("=")
        if not sep:
            raise UsageError(f"--dataset takes NAME=ROOT, got {self.dataset!r}")
        return read_dataset(name, root)


@dataclass(frozen=True)
class TrainSpec:
    """Everything a training run needs to know, decided once from the command line."""

    data: DataSource
    output: Path
    variant: str = "wadiqam-fr"
    fit: FitConfig = field(default_factory=FitConfig)
    split: tuple[float, float, float] = DEFAULT_FRACTIONS
    resume: bool = False
    overwrite: bool = False
    init: Path | None = None
    rows_per_file: int = 64
    shuffle_buffer: int = 256
    reader_workers: int = 0
    threads: int | None = None
    device: str = "auto"
    min_srocc: float | None = None  # exit 1 when the held-out SROCC is below this
    command: str = ""  # how the run was started, recorded in the weights file


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """--manifest PATH or --dataset NAME=ROOT (``data_source`` reads them)."""
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--manifest", type=Path, help="manifest table (Parquet or CSV)")
    data.add_argument("--dataset", metavar="NAME=ROOT", help="a published dataset's folder")


def data_source(args: argparse.Namespace) -> DataSource:
    return DataSource(manifest=args.manifest, dataset=args.dataset)


def add_synthesis_arguments(parser: argparse.ArgumentParser) -> None:
    """The synthetic set's options, shared by ``deepiqa synthesize`` and jobs/synthesize.py."""
    from .distortions import DISTORTIONS, LEVELS
    from .synthetic import DEFAULT_LONG_SIDE
    from .weak_labels import LABELS, WEAK_LABEL_VERSION

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
    parser.add_argument(
        "--label",
        choices=sorted(LABELS),
        default=WEAK_LABEL_VERSION,
        help="weak label version (default %(default)s: MS-SSIM + GMSD + chroma similarity; "
        "weak-v0: SSIM + PSNR, for regenerating older sets); the rows' dataset name says it",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    fit, spec = FitConfig, TrainSpec
    add_data_arguments(parser)
    parser.add_argument("--output", type=Path, required=True, help="run folder (see below)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default=spec.variant)
    parser.add_argument(
        "--epochs", type=_positive, default=fit.epochs, help="passes over the training split"
    )
    parser.add_argument(
        "--batch-images", type=_positive, default=fit.batch_images, help="images per step"
    )
    parser.add_argument(
        "--patches-per-image", type=_positive, default=fit.patches_per_image, help="crops/image"
    )
    parser.add_argument("--lr", type=float, default=fit.lr, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=fit.seed, help="seeds splits, crops, init")
    parser.add_argument(
        "--split",
        type=float,
        nargs=3,
        default=spec.split,
        metavar=("TRAIN", "VAL", "TEST"),
        help="fractions of references per split (0.6 0.2 0.2); ignored when the manifest has "
        "its own 'split' column (train/val/test)",
    )
    parser.add_argument(
        "--checkpoint-every", type=_positive, default=fit.checkpoint_every, help="epochs apart"
    )
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    parser.add_argument("--max-seconds", type=float, help="stop after this much training time")
    parser.add_argument("--init", type=Path, help="start from these weights (fine-tuning)")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument(
        "--rows-per-file", type=_positive, default=spec.rows_per_file, help="examples per file"
    )
    parser.add_argument(
        "--shuffle-buffer", type=_positive, default=spec.shuffle_buffer, help="rows mixed"
    )
    parser.add_argument(
        "--reader-workers",
        type=int,
        default=spec.reader_workers,
        help="Petastorm reader threads; 0 = in the training thread, reproducible order (default)",
    )
    parser.add_argument("--threads", type=_positive, help="torch threads per process")
    parser.add_argument("--device", default=spec.device, help=DEVICE_CHOICES_HELP)
    parser.add_argument(
        "--min-srocc",
        type=float,
        help="exit 1 when the saved model's held-out SROCC (test, else validation) is below "
        "this; without it, a negative SROCC is only warned about",
    )


def train_spec(args: argparse.Namespace, command: str) -> TrainSpec:
    """The run's spec from parsed ``add_training_arguments`` flags (``command``: for the record)."""
    fit = FitConfig(
        epochs=args.epochs,
        batch_images=args.batch_images,
        patches_per_image=args.patches_per_image,
        lr=args.lr,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        max_seconds=args.max_seconds,
        bf16=args.bf16,
    )
    return TrainSpec(
        data=data_source(args),
        output=args.output,
        variant=args.variant,
        fit=fit,
        split=tuple(args.split),
        resume=args.resume,
        overwrite=args.overwrite,
        init=args.init,
        rows_per_file=args.rows_per_file,
        shuffle_buffer=args.shuffle_buffer,
        reader_workers=args.reader_workers,
        threads=args.threads,
        device=args.device,
        min_srocc=args.min_srocc,
        command=command,
    )


def check_run_target(spec: TrainSpec) -> Path:
    """The run folder, checked before any work: apart from the inputs; an existing one needs
    --resume (continue) or --overwrite (start over) and must be a deepiqa run folder."""
    run_dir = spec.output.absolute()
    check_separate(run_dir, [spec.data.manifest, spec.init])
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (spec.resume or spec.overwrite):
            raise OutputExistsError(
                f"{run_dir} exists; pass --resume to continue it or --overwrite"
            )
        check_replaceable(run_dir)  # only ever continue or delete a deepiqa run folder
    return run_dir


def check_run_dir(spec: TrainSpec) -> Path:
    """The run folder (``check_run_target``), emptied for --overwrite, marked as deepiqa's."""
    run_dir = check_run_target(spec)
    if spec.overwrite and not spec.resume and run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)  # a deepiqa run folder (check_run_target), nothing else
    run_dir.mkdir(parents=True, exist_ok=True)
    write_marker(run_dir, "training-run")
    return run_dir


@dataclass
class Plan:
    """A run's inputs, decided on the driver before any data is fetched."""

    spec: TrainSpec
    run_dir: Path
    data_dir: Path
    manifest: pd.DataFrame  # with row_id and split
    record: dict  # what data_dir/prepared.json must say
    meta: dict  # the labels' meaning, for the weights file
    label_mean: float
    training_data: str


def plan_run(spec: TrainSpec) -> Plan:
    check_run_target(spec)  # a refused output costs no reading of the data
    manifest = spec.data.load()
    split_manifest = with_splits(manifest, spec.split, spec.fit.seed)
    train = split_manifest[split_manifest["split"] == "train"]
    if train.empty:
        raise UsageError("the training split is empty: add references or change --split")
    full_reference = get_variant(spec.variant).full_reference
    record = prepared_record(manifest, list(spec.split), spec.fit.seed, full_reference)
    run_dir = check_run_dir(spec)
    datasets = "+".join(sorted(manifest["dataset"].astype(str).unique()))
    split_text = (
        "splits from the manifest's split column"
        if "split" in manifest.columns
        else f"references split {'/'.join(f'{f:g}' for f in spec.split)}, seed {spec.fit.seed}"
    )
    training_data = (
        f"{datasets}: {len(train)} training images from {train['ref_id'].nunique()} references "
        f"({split_text}); "
        f"manifest sha256 {record['manifest_sha256'][:16]}"
    )
    return Plan(
        spec=spec,
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
    from ..datasets import DatasetError

    record = check_prepared(plan.data_dir, plan.record)
    if record is None:
        shutil.rmtree(plan.data_dir, ignore_errors=True)  # a preparation cut short: redo it
        plan.data_dir.mkdir(parents=True)
        record = prepare()
    if not record["rows"]["train"]:
        raise DatasetError(f"no usable training images (see {plan.data_dir / REJECTED})")
    return record


def build_job(plan: Plan, use_gpu: bool) -> TrainJob:
    """What every training process runs: the spec's protocol plus the plan's labels."""
    spec = plan.spec
    initial_bias = None if spec.init else plan.label_mean
    fit = replace(spec.fit, initial_bias=initial_bias)
    return TrainJob(
        data_dir=str(plan.data_dir),
        run_dir=str(plan.run_dir),
        variant=spec.variant,
        fit=fit,
        meta={
            **plan.meta,
            "training_data": plan.training_data,
            "source": f"trained with: {spec.command}",
            "description": f"{spec.variant} trained by deepiqa",
        },
        use_gpu=use_gpu,
        init_weights=str(spec.init) if spec.init else None,
        resume=spec.resume,
        shuffle_buffer=spec.shuffle_buffer,
        reader_workers=spec.reader_workers,
        threads=spec.threads,
    )


def held_out_verdict(summary: dict, spec: TrainSpec, log=print) -> ExitCode:
    """Judge the saved model on its held-out SROCC (test, else validation): a value below
    ``--min-srocc`` is a breached threshold (exit 1); a negative one is always warned about,
    since such a model ranks images the wrong way round."""
    name, value = next(
        ((k, summary[k]) for k in ("test_srocc", "val_srocc") if summary.get(k) is not None),
        (None, None),
    )
    if value is None:
        log("warning: no held-out SROCC (empty validation and test splits): the model is unjudged")
        return ExitCode.OK
    if spec.min_srocc is not None and value < spec.min_srocc:
        log(f"{name} {value:.4f} is below --min-srocc {spec.min_srocc}")
        return ExitCode.THRESHOLD
    if value < 0:
        log(f"WARNING: {name} is {value:.4f}: the model ranks held-out images the wrong way round")
    return ExitCode.OK


DEFAULT_SYNTHETIC_OUTPUT = Path("output/synthetic-default")


@dataclass(frozen=True)
class SynthesisSpec:
    """A synthetic training set made on Spark (``spark.synthesize_job``)."""

    photos: str
    output: Path
    distortions: tuple[str, ...]
    levels: tuple[int, ...]
    seed: int
    long_side: int
    label: str
    overwrite: bool = False
    partitions: int | None = None  # default: one task per (photo, type) group

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SynthesisSpec:
        return cls(
            photos=args.photos,
            output=args.output,
            distortions=tuple(args.distortions),
            levels=tuple(args.levels),
            seed=args.seed,
            long_side=args.long_side,
            label=args.label,
            overwrite=args.overwrite,
            partitions=args.partitions,
        )


def add_synthesis_job_arguments(p: argparse.ArgumentParser) -> None:
    """jobs/synthesize.py's flags (``SynthesisSpec.from_args`` reads them)."""
    from ..defaults import SAMPLES

    p.add_argument("photos", nargs="?", default=str(SAMPLES / "nr"), help="folder, glob, s3://")
    p.add_argument("--output", type=Path, default=DEFAULT_SYNTHETIC_OUTPUT)
    p.add_argument("--overwrite", action="store_true")
    add_synthesis_arguments(p)
    p.add_argument("--partitions", type=int, help="default: one task per (photo, type) group")
