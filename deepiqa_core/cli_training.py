"""``deepiqa dataset | synthesize | train | evaluate``: the data and training side of the CLI.

These commands need the ``train`` extra (pandas, pyarrow, petastorm, scipy); their imports are
deferred so that ``deepiqa score`` works without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_OK, EXIT_PARTIAL, EXIT_FATAL = 0, 1, 3
DATASET_NAMES = ("live", "tid2013", "kadid10k", "csiq", "clive", "koniq10k")


def _fail(exc: Exception) -> int:
    print(f"deepiqa: {exc}", file=sys.stderr)
    return EXIT_FATAL


def cmd_dataset(args: argparse.Namespace) -> int:
    from .datasets import DatasetError, read_dataset, write_manifest

    try:
        manifest = read_dataset(args.name, args.root)
    except DatasetError as exc:
        return _fail(exc)
    write_manifest(manifest, args.output)
    refs = manifest["ref_id"].nunique()
    print(f"deepiqa dataset: {len(manifest)} images, {refs} references -> {args.output}")
    return EXIT_OK


def cmd_synthesize(args: argparse.Namespace) -> int:
    import os

    from .defaults import SAMPLES
    from .sources import list_local
    from .training.synthetic import generate_local

    photos = list_local(args.photos or str(SAMPLES / "nr"))
    if not photos:
        return _fail(ValueError(f"no photos found in {args.photos}"))
    try:
        manifest = generate_local(
            photos,
            args.output,
            seed=args.seed,
            long_side=args.long_side,
            distortions=args.distortions,
            levels=args.levels,
            workers=args.workers or os.cpu_count() or 1,
        )
    except ValueError as exc:
        return _fail(exc)
    print(f"deepiqa synthesize: {len(manifest)} images -> {Path(args.output) / 'manifest.parquet'}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from .datasets import DatasetError
    from .training.options import build_job, plan_run, prepared_data
    from .training.prepare import prepare_local
    from .training.run import train_worker

    def prepare() -> dict:
        prepared = prepare_local(plan.manifest, plan.data_dir, plan.record, args.rows_per_file)
        print(f"deepiqa train: prepared {prepared['rows']}, rejected {prepared['rejected']}")
        return prepared

    try:
        plan = plan_run(args)
        prepared_data(plan, prepare)
    except (DatasetError, ValueError, FileExistsError) as exc:
        return _fail(exc)
    use_gpu = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    try:
        summary = train_worker(build_job(args, plan, use_gpu))
    except ValueError as exc:  # e.g. --resume with settings that differ from the checkpoint's
        return _fail(exc)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "fit")}))
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm import tqdm

    from .batch import BatchConfig, BatchScorer
    from .datasets import DatasetError
    from .evaluation import evaluate_predictions, format_report
    from .scoring import Scorer
    from .training.options import load_training_manifest
    from .weights import load_weights, weights_sha256

    try:
        manifest = load_training_manifest(args)
    except (DatasetError, ValueError) as exc:
        return _fail(exc)
    data = Path(args.weights).read_bytes()
    model, meta = load_weights(data)
    if model.full_reference and manifest["ref_uri"].isna().any():
        return _fail(ValueError(f"{meta.variant} needs references; this manifest lacks some"))
    sha = weights_sha256(data)
    scorer = BatchScorer(Scorer(model, device=args.device), meta.variant, sha, BatchConfig())
    predictions = []
    with tqdm(total=len(manifest), unit="img", disable=None, file=sys.stderr) as bar:
        for start in range(0, len(manifest), args.batch_rows):
            part = manifest.iloc[start : start + args.batch_rows]
            predictions.append(scorer.score_frame(part[["id", "uri", "ref_uri"]]))
            bar.update(len(part))
    scored = pd.concat(predictions, ignore_index=True)
    frame = manifest.reset_index(drop=True).assign(
        prediction=scored["score"].to_numpy(), error_code=scored["error_code"].to_numpy()
    )
    report = evaluate_predictions(frame, model_direction=meta.score_direction)
    report["model"] = {"variant": meta.variant, "sha256": sha, "file": args.weights}
    if args.predictions:
        frame.to_parquet(args.predictions, index=False)
    print(json.dumps(report, indent=2) if args.format == "json" else format_report(report))
    return EXIT_PARTIAL if report["failed"] else EXIT_OK


def add_training_commands(sub: argparse._SubParsersAction, epilog_formatter: type) -> None:
    from .training.options import (
        EPILOG,
        add_data_arguments,
        add_synthesis_arguments,
        add_training_arguments,
    )

    dataset = sub.add_parser(
        "dataset",
        help="read a published IQA dataset folder into a manifest table",
        description=(
            "Read a user's copy of LIVE (Release 2), TID2013, KADID-10k, CSIQ, CLIVE or "
            "KonIQ-10k in its published layout and write the common manifest (Parquet or CSV)."
        ),
    )
    dataset.add_argument("name", choices=DATASET_NAMES)
    dataset.add_argument("root", help="the dataset's folder, as published")
    dataset.add_argument("--output", required=True, help="manifest.parquet or manifest.csv")
    dataset.set_defaults(func=cmd_dataset)

    synthesize = sub.add_parser(
        "synthesize",
        help="make a KADID-style synthetic training set with weak labels, on this machine",
        description=(
            "Distort photos with KADID-10k's 25 types x 5 levels and label each with the weak "
            "label (weak-v0: SSIM + PSNR, 0-100, higher = better). Writes OUTPUT/references/, "
            "OUTPUT/images/ and OUTPUT/manifest.parquet; `spark-submit jobs/synthesize.py` does "
            "the same on a cluster, with the same pixels and labels for the same seed."
        ),
    )
    synthesize.add_argument("photos", nargs="?", help="folder or glob (default: bundled samples)")
    synthesize.add_argument("--output", required=True, help="folder to write")
    add_synthesis_arguments(synthesize)
    synthesize.add_argument("--workers", type=int, help="processes (default: CPUs)")
    synthesize.set_defaults(func=cmd_synthesize)

    train = sub.add_parser(
        "train",
        help="train a network on a manifest in this process (no Spark)",
        description=(
            "Train DIQaM/WaDIQaM with the paper's protocol in one process, reading examples "
            "through Petastorm exactly as `spark-submit jobs/train.py` does with several."
        ),
        epilog=EPILOG,
        formatter_class=epilog_formatter,
    )
    add_training_arguments(train)
    train.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="score a manifest's images and compare with its subjective scores",
        description=(
            "PLCC, SROCC, KROCC (raw), PLCC and RMSE after a 5-parameter logistic mapping, per "
            "dataset (cross-dataset evaluation) and per distortion type. Labels whose direction "
            "is opposite to the model's (DMOS vs quality) are negated for the correlations."
        ),
    )
    add_data_arguments(evaluate)
    evaluate.add_argument("--weights", required=True, help="a deepiqa .safetensors file")
    evaluate.add_argument("--format", choices=["table", "json"], default="table")
    evaluate.add_argument("--predictions", help="also write per-image predictions (Parquet)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--batch-rows", type=int, default=64, help="rows scored per batch")
    evaluate.set_defaults(func=cmd_evaluate)
