"""The ``deepiqa`` command: score images, convert and inspect weight files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .batch import BatchConfig, BatchScorer, ImageRow, RowResult
from .cli_training import add_training_commands
from .defaults import DEFAULT_WEIGHTS, SAMPLES
from .errors import DeepIQAError
from .imaging import DEFAULT_MAX_PIXELS, decode_image, default_decode_workers
from .maps import save_map
from .models import PATCH_SIZE, VARIANTS, DeepIQA
from .scoring import DEFAULT_PATCH_BUDGET, Scorer
from .sources import IMAGE_SUFFIXES, read_bytes
from .weights import SOURCES, WeightsMeta, import_weights, load_weights, save_weights
from .weights.format import SCORE_DIRECTIONS, weights_sha256

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_FATAL = 0, 1, 2, 3
PAIR_SEPARATOR = "__"


EPILOG = f"""\
exit codes:
  {EXIT_OK}  every input was scored
  {EXIT_PARTIAL}  some inputs could not be scored (their rows carry error_code/error_message)
  {EXIT_USAGE}  bad command line
  {EXIT_FATAL}  nothing was scored: unreadable weights, missing input path, ...

examples:
  deepiqa score photo.jpg                      # the shipped default WaDIQaM-NR weights
  deepiqa score photo.jpg --weights nr.safetensors
  deepiqa score photos/ --weights nr.safetensors --format csv --output scores.csv
  deepiqa score dist.png --ref ref.png --weights fr.safetensors --map dist-map.png
  deepiqa score distorted/ --ref references/ --weights fr.safetensors --format json
  deepiqa convert fr_live_weighted.model fr.safetensors --from chainer
  deepiqa info fr.safetensors
  deepiqa init untrained.safetensors --variant wadiqam-nr --seed 0
  deepiqa samples   # prints where the bundled sample images are

data and training (the `train` extra):
  deepiqa dataset tid2013 /data/tid2013 --output tid2013.parquet
  deepiqa synthesize photos/ --output synthetic/
  deepiqa train --manifest synthetic/manifest.parquet --variant wadiqam-fr --output runs/fr
  deepiqa evaluate --manifest tid2013.parquet --weights runs/fr/model.safetensors
"""


class UsageError(Exception):
    """A command-line mistake found after parsing (exit code 2)."""


@dataclass
class Row:
    path: str
    reference: str | None = None
    score: float | None = None
    num_patches: int | None = None
    error_code: str | None = None
    error_message: str | None = None


def _list_images(folder: Path, recursive: bool) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def pair_key(path: Path) -> str:
    """A distorted file ``<key>__<anything>.<ext>`` (or ``<key>.<ext>``) pairs with ``<key>.*``."""
    return path.stem.split(PAIR_SEPARATOR, 1)[0]


def _pairs(inputs: Path, ref: Path, recursive: bool) -> list[tuple[Path, Path | None]]:
    if inputs.is_file():
        if not ref.is_file():
            raise UsageError("--ref must be a file when the input is a file")
        return [(inputs, ref)]
    if not ref.is_dir():
        raise UsageError("--ref must be a folder when the input is a folder")
    refs: dict[str, Path] = {}
    for p in _list_images(ref, recursive):
        refs.setdefault(p.stem, p)
    pairs = [(p, refs.get(pair_key(p))) for p in _list_images(inputs, recursive)]
    return sorted(pairs, key=lambda pr: (str(pr[1]), str(pr[0])))  # shared references adjacent


def _error_row(path: Path, ref: Path | None, exc: Exception) -> Row:
    result = RowResult()
    result.fail(exc)
    return Row(str(path), ref and str(ref), None, None, result.error_code, result.error_message)


ROWS_PER_CALL = 64  # rows per BatchScorer call: the progress bar moves, memory stays bounded


def _score_pairs(
    batch: BatchScorer, pairs: Sequence[tuple[Path, Path | None]], progress: bool
) -> Iterator[Row]:
    """Score files with the same BatchScorer the Spark workers use: one Row per file."""
    bar = tqdm(total=len(pairs), unit="img", disable=not progress, file=sys.stderr)
    for start in range(0, len(pairs), ROWS_PER_CALL):
        part = pairs[start : start + ROWS_PER_CALL]
        rows = [ImageRow(str(p), uri=str(p), ref_uri=r and str(r)) for p, r in part]
        for (path, ref), res in zip(part, batch.score_rows(rows), strict=True):
            bar.update(1)
            yield Row(
                str(path),
                ref and str(ref),
                res.score,
                res.num_patches,
                res.error_code,
                res.error_message,
            )
    bar.close()


def _format_rows(rows: list[Row], fmt: str, full_reference: bool) -> str:
    columns = (
        ["path"]
        + (["reference"] if full_reference else [])
        + ["score", "num_patches", "error_code", "error_message"]
    )
    records = [{c: getattr(r, c) for c in columns} for r in rows]
    if fmt == "json":
        return json.dumps(records, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        return buf.getvalue()
    cells = [columns] + [
        [
            "" if r[c] is None else f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c])
            for c in columns
        ]
        for r in records
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    return "".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in cells
    )


def _load_scorer(args: argparse.Namespace) -> tuple[Scorer, WeightsMeta, str]:
    """The scorer, the file's metadata and its SHA-256, from one read of the weights file."""
    if args.weights is None:
        args.weights = str(DEFAULT_WEIGHTS["fr" if args.ref is not None else "nr"])
    data = Path(args.weights).read_bytes()
    model, meta = load_weights(data)
    scorer = Scorer(model, device=args.device, stride=args.stride, patch_budget=args.patch_budget)
    return scorer, meta, weights_sha256(data)


def cmd_score(args: argparse.Namespace) -> int:
    inputs = Path(args.input)
    if not inputs.exists():
        print(f"deepiqa: input {inputs} does not exist", file=sys.stderr)
        return EXIT_FATAL
    if args.map and not inputs.is_file():
        raise UsageError("--map needs a single image as input")
    scorer, meta, sha = _load_scorer(args)
    if scorer.full_reference != (args.ref is not None):
        need = "needs --ref" if scorer.full_reference else "takes no --ref"
        raise UsageError(f"the model is {meta.variant}, which {need}")
    if args.ref is not None:
        pairs = _pairs(inputs, Path(args.ref), args.recursive)
    elif inputs.is_file():
        pairs = [(inputs, None)]
    else:
        pairs = [(p, None) for p in _list_images(inputs, args.recursive)]
    if not pairs:
        print(f"deepiqa: no images found in {inputs}", file=sys.stderr)
        return EXIT_FATAL

    started = time.perf_counter()
    if args.map:
        rows = [_score_with_map(scorer, pairs[0], args)]
    else:
        config = BatchConfig(
            stride=args.stride,
            patch_budget=args.patch_budget,
            max_pixels=args.max_pixels,
            decode_workers=args.decode_workers,
        )
        batch = BatchScorer(scorer, meta.variant, sha, config)
        progress = not args.quiet and len(pairs) > 1 and sys.stderr.isatty()
        rows = list(_score_pairs(batch, pairs, progress))
    elapsed = time.perf_counter() - started

    text = _format_rows(rows, args.format, scorer.full_reference)
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    failed = sum(r.error_code is not None for r in rows)
    if not args.quiet:
        print(
            f"deepiqa: scored {len(rows) - failed}/{len(rows)} images in {elapsed:.1f}s with "
            f"{meta.variant} ({sha[:12]}); score direction: "
            f"{meta.score_direction}",
            file=sys.stderr,
        )
    if failed == len(rows):
        return EXIT_FATAL
    return EXIT_PARTIAL if failed else EXIT_OK


def _score_with_map(
    scorer: Scorer, pair: tuple[Path, Path | None], args: argparse.Namespace
) -> Row:
    path, ref = pair
    try:
        image = decode_image(read_bytes(str(path)), max_pixels=args.max_pixels)
        reference = decode_image(read_bytes(str(ref)), max_pixels=args.max_pixels) if ref else None
        result = scorer.score_one(image, reference, return_patches=True)
    except DeepIQAError as exc:
        return _error_row(path, ref, exc)
    assert result.patches is not None
    save_map(image, result.patches, args.map)
    return Row(str(path), ref and str(ref), result.score, result.num_patches)


def cmd_convert(args: argparse.Namespace) -> int:
    model, meta = import_weights(args.source, args.source_layout, args.variant)
    if args.score_direction:
        meta.score_direction = args.score_direction
    if args.training_data:
        meta.training_data = args.training_data
    save_weights(model, args.destination, meta, half=args.half)
    print(f"wrote {args.destination}: {meta.variant} ({meta.source})")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    data = Path(args.weights).read_bytes()
    model, meta = load_weights(data)
    info = json.loads(meta.to_json())
    info["sha256"] = weights_sha256(data)
    info["parameters"] = sum(p.numel() for p in model.parameters())
    print(json.dumps(info, indent=2, sort_keys=True))
    return EXIT_OK


def cmd_init(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    model = DeepIQA(args.variant)
    meta = WeightsMeta(
        variant=args.variant,
        training_data="none",
        source=f"random initialisation, torch.manual_seed({args.seed})",
        description="UNTRAINED: for testing pipelines only; its scores mean nothing",
    )
    save_weights(model, args.destination, meta)
    print(f"wrote {args.destination}: untrained {args.variant} (seed {args.seed})")
    return EXIT_OK


def cmd_samples(args: argparse.Namespace) -> int:
    print(SAMPLES)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepiqa",
        description="DeepIQA image quality (DIQaM / WaDIQaM, no-reference and full-reference).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    score = sub.add_parser(
        "score",
        help="score an image or a folder (NR), or distorted images against references (FR)",
        description=(
            "Score images with a weights file. NR: INPUT is an image or a folder. FR: also give "
            f"--ref; with folders, a distorted file '<key>{PAIR_SEPARATOR}<anything>.<ext>' or "
            "'<key>.<ext>' pairs with the reference '<key>.<ext>'. A file that cannot be scored "
            "gets a row with error_code (decode_error, too_small, too_large, unsupported_image, "
            "size_mismatch, unpaired, missing) and the rest are still scored."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("input", help="an image file or a folder of images")
    score.add_argument(
        "--weights",
        help="a deepiqa .safetensors weights file (default: the shipped WaDIQaM-NR, or "
        "WaDIQaM-FR with --ref)",
    )
    score.add_argument("--ref", help="reference image or folder (full-reference models only)")
    score.add_argument("--format", choices=["table", "json", "csv"], default="table")
    score.add_argument("--output", help="write the table/JSON/CSV here instead of stdout")
    score.add_argument(
        "--map",
        metavar="OUT.png",
        help="(single image) also write a picture: image | local quality | patch weight",
    )
    score.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    score.add_argument(
        "--stride",
        type=int,
        default=PATCH_SIZE,
        help="patch grid step in pixels; < 32 scores overlapping patches (default 32, the paper's)",
    )
    score.add_argument(
        "--device", default="auto", help="auto (cuda:0 if present, else cpu), cpu, cuda, cuda:N"
    )
    score.add_argument(
        "--patch-budget",
        type=int,
        default=DEFAULT_PATCH_BUDGET,
        help=f"most patches per forward pass; bounds memory (default {DEFAULT_PATCH_BUDGET})",
    )
    score.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse larger images as too_large (default {DEFAULT_MAX_PIXELS})",
    )
    score.add_argument(
        "--decode-workers",
        type=int,
        default=default_decode_workers(),
        help="threads that read and decode images ahead of the network (default: CPUs, max 8)",
    )
    score.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    score.set_defaults(func=cmd_score)

    convert = sub.add_parser(
        "convert",
        help="convert published weights (chainer .model, lidq92, pyiqa) to deepiqa safetensors",
        description=(
            "Convert a published weights file. Key names, FR fusion order, input range (0..255 "
            "-> 0..1) and epsilon are folded in; the result scores like the source network."
        ),
    )
    convert.add_argument("source", help="the published file")
    convert.add_argument("destination", help="the .safetensors file to write")
    convert.add_argument(
        "--from",
        dest="source_layout",
        required=True,
        choices=sorted(SOURCES),
        help="chainer: the authors' HDF5 .model; lidq92: WaDIQaM port state dict; pyiqa: "
        "{'params': ...} checkpoint",
    )
    convert.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        help="default: inferred from head shapes and the file name (needed for chainer NR files)",
    )
    convert.add_argument("--score-direction", choices=SCORE_DIRECTIONS)
    convert.add_argument("--training-data", help="what the source was trained on, for the record")
    convert.add_argument("--half", action="store_true", help="store fp16 tensors (half the size)")
    convert.set_defaults(func=cmd_convert)

    info = sub.add_parser("info", help="print what a weights file is (metadata, hash, size)")
    info.add_argument("weights")
    info.set_defaults(func=cmd_info)

    init = sub.add_parser(
        "init", help="write UNTRAINED randomly initialised weights, for testing pipelines"
    )
    init.add_argument("destination")
    init.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(func=cmd_init)

    samples = sub.add_parser("samples", help="print the folder of the bundled sample images")
    samples.set_defaults(func=cmd_samples)
    add_training_commands(sub, argparse.RawDescriptionHelpFormatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        parser.error(str(exc))  # exits with EXIT_USAGE
    except (DeepIQAError, OSError) as exc:
        print(f"deepiqa: {exc}", file=sys.stderr)
        return EXIT_FATAL
    return EXIT_FATAL


if __name__ == "__main__":
    sys.exit(main())
