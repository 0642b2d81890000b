"""``deepiqa dataset | synthesize | train | evaluate``: the data and training side of the CLI.

These commands need the ``train`` extra (pandas, pyarrow, petastorm, scipy); their imports are
deferred so that ``deepiqa score`` works without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .devices import DEVICE_CHOICES_HELP
from .errors import UsageError
from .exits import ExitCode, threshold_code

DATASET_NAMES = ("live", "tid2013", "kadid10k", "csiq", "clive", "koniq10k")


def cmd_dataset(args: argparse.Namespace) -> int:
    from .datasets import read_dataset, write_manifest

    manifest = read_dataset(args.name, args.root)
    write_manifest(manifest, args.output)
    refs = manifest["ref_id"].nunique()
    print(f"deepiqa dataset: {len(manifest)} images, {refs} references -> {args.output}")
    return ExitCode.OK


def cmd_synthesize(args: argparse.Namespace) -> int:
    import os

    from .defaults import SAMPLES
    from .listing import list_images
    from .training.synthetic import generate_local

    photos = list_images(args.photos or str(SAMPLES / "nr"))
    if not photos:
        raise UsageError(f"no photos found in {args.photos}")
    manifest = generate_local(
        photos,
        args.output,
        seed=args.seed,
        long_side=args.long_side,
        distortions=args.distortions,
        levels=args.levels,
        workers=args.workers or os.cpu_count() or 1,
        label=args.label,
    )
    print(f"deepiqa synthesize: {len(manifest)} images -> {Path(args.output) / 'manifest.parquet'}")
    return ExitCode.OK


def cmd_train(args: argparse.Namespace) -> int:
    import shlex

    import torch

    from .devices import wants_gpu
    from .training.options import (
        build_job,
        held_out_verdict,
        plan_run,
        prepared_data,
        train_spec,
    )
    from .training.prepare import prepare_local
    from .training.run import train_worker

    spec = train_spec(args, " ".join(shlex.quote(a) for a in sys.argv))
    plan = plan_run(spec)

    def prepare() -> dict:
        prepared = prepare_local(plan.manifest, plan.data_dir, plan.record, spec.rows_per_file)
        print(f"deepiqa train: prepared {prepared['rows']}, rejected {prepared['rejected']}")
        return prepared

    prepared_data(plan, prepare)
    use_gpu = wants_gpu(spec.device, torch.cuda.is_available())
    summary = train_worker(build_job(plan, use_gpu))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "fit")}))
    return held_out_verdict(
        summary, spec, lambda text: print(f"deepiqa train: {text}", file=sys.stderr)
    )


def cmd_evaluate(args: argparse.Namespace) -> int:
    import pandas as pd
    from tqdm import tqdm

    from .batch import BatchConfig, BatchScorer
    from .evaluation import evaluate_predictions, format_report
    from .local_scorer import read_weights
    from .options import ScoringOptions
    from .scoring import Scorer
    from .training.options import data_source
    from .weights import load_weights, weights_sha256

    manifest = data_source(args).load()
    data = read_weights(Path(args.weights))
    model, meta = load_weights(data)
    if model.full_reference and manifest["ref_uri"].isna().any():
        raise UsageError(f"{meta.variant} needs references; this manifest lacks some")
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
    return threshold_code(report["failed"], len(manifest), ScoringOptions.max_error_rate)


def add_training_commands(
    sub: argparse._SubParsersAction, epilog_formatter: type[argparse.HelpFormatter]
) -> None:
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
            "label (--label, default weak-v1: MS-SSIM + GMSD + chroma similarity, 0-100, higher = "
            "better; the rows' dataset name says which). Writes OUTPUT/references/, "
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
    evaluate.add_argument("--device", default="auto", help=DEVICE_CHOICES_HELP)
    evaluate.add_argument("--batch-rows", type=int, default=64, help="rows scored per batch")
    evaluate.set_defaults(func=cmd_evaluate)
