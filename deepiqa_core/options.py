"""What to score and how: typed specs, and the command-line flags shared by every entry point.

``deepiqa score`` and ``spark-submit jobs/score.py`` (and ``jobs/evaluate.py``, the audit) take
the same input and scoring flags from ``add_input_arguments`` / ``add_scoring_arguments``; the
flags' defaults are read from ``InputSpec``, ``BatchConfig`` and ``ScoringOptions``, so each is
defined once, and the parsed flags become frozen specs once (``input_spec``, ``scoring_options``)
before any library or Spark code sees them.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from .batch import BatchConfig
from .defaults import WEIGHTS_HELP
from .devices import DEVICE_CHOICES_HELP, PRECISION_HELP, PRECISIONS
from .pairing import DEFAULT_PAIR_REGEX, check_pair_regex

MANIFEST_SUFFIXES = (".parquet", ".csv")


def is_manifest(source: str) -> bool:
    """A manifest table (Parquet file or folder, or CSV) rather than images to list."""
    return source.lower().rstrip("/").endswith(MANIFEST_SUFFIXES)


@dataclass(frozen=True)
class InputSpec:
    """The images to score: a folder, glob, file, ``s3://`` prefix or manifest, and for FR
    models the references (``ref``: the same kinds, paired by ``pair_regex``; or a manifest's
    ``ref_column``)."""

    source: str
    ref: str | None = None
    recursive: bool = True
    uri_column: str = "uri"
    id_column: str = "id"
    ref_column: str = "ref_uri"
    bytes_column: str | None = None
    ref_bytes_column: str | None = None
    pair_regex: str = DEFAULT_PAIR_REGEX

    @property
    def is_manifest(self) -> bool:
        return is_manifest(self.source)


@dataclass(frozen=True)
class ScoringOptions:
    """How rows are scored (``batch``), on which device and in which precision."""

    batch: BatchConfig = field(default_factory=BatchConfig)
    device: str = "auto"
    precision: str = "fp32"
    max_error_rate: float | None = 0.0


def _at_least(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _regex(text: str) -> str:
    try:
        return check_pair_regex(text)
    except Exception as exc:  # re.error or the missing group
        raise argparse.ArgumentTypeError(str(exc)) from exc


positive = _at_least(1)


INPUTS_HELP = """\
inputs (INPUT and --ref):
  an image file, or a folder (searched recursively;           photo.jpg  photos/
  --no-recursive: its own files), or a glob of image files    'photos/*.jpg'
  an S3 prefix (read with boto3; endpoint/credentials from    s3://bucket/photos/
  the usual AWS_* settings)
  a Parquet or CSV manifest with a 'uri' column (local paths  manifest.parquet
  and s3:// URIs may be mixed), optional 'id', 'ref_uri';
  or a Parquet table of image bytes ('--bytes-column image')

full reference:
  --ref with a folder/prefix pairs each image with the reference whose file stem equals the
  key that --pair-regex takes from the image's stem (default: the part before '__', so
  'cat__jpeg_q10.jpg' pairs with 'cat.png'); of references sharing a stem, the smallest path
  wins. A manifest may instead carry 'ref_uri'."""


def add_output_arguments(parser: argparse.ArgumentParser, output_help: str) -> None:
    """What every scoring job (Spark, Beam) takes besides its own flags: INPUT and the input
    flags, --weights, --output, --overwrite, --pass-columns."""
    add_input_arguments(
        parser, input_help="folder, glob, file, s3:// prefix or manifest (see below)"
    )
    parser.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    parser.add_argument("--output", help=output_help)
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier deepiqa output"
    )
    parser.add_argument(
        "--pass-columns",
        nargs="*",
        metavar="COLUMN",
        help="manifest columns copied to the score rows (default: all; none: no columns)",
    )


def add_input_arguments(parser: argparse.ArgumentParser, *, input_help: str) -> None:
    spec = InputSpec
    parser.add_argument("input", nargs="?", help=input_help)
    parser.add_argument("--ref", help="references for FR models: same kinds as INPUT")
    parser.add_argument(
        "--recursive",
        action=argparse.BooleanOptionalAction,
        default=spec.recursive,
        help="search folders (and S3 prefixes) below INPUT too (default: yes)",
    )
    group = parser.add_argument_group("manifest columns and pairing")
    group.add_argument("--uri-column", default=spec.uri_column)
    group.add_argument("--id-column", default=spec.id_column, help="(default: the uri)")
    group.add_argument("--ref-column", default=spec.ref_column)
    group.add_argument("--bytes-column", help="column of image bytes, read instead of uris")
    group.add_argument("--ref-bytes-column", help="column of reference bytes (FR)")
    group.add_argument(
        "--pair-regex",
        type=_regex,
        default=spec.pair_regex,
        help="regex whose group 1 turns an image's file stem into its reference's stem",
    )


def input_spec(args: argparse.Namespace) -> InputSpec:
    return InputSpec(
        source=args.input,
        ref=args.ref,
        recursive=args.recursive,
        uri_column=args.uri_column,
        id_column=args.id_column,
        ref_column=args.ref_column,
        bytes_column=args.bytes_column,
        ref_bytes_column=args.ref_bytes_column,
        pair_regex=args.pair_regex,
    )


def add_scoring_arguments(parser: argparse.ArgumentParser, *, error_rate: bool = True) -> None:
    """The scoring flags; ``error_rate=False`` (the audit, which alerts by rules instead)
    keeps ``--max-error-rate`` out of the help (given anyway, the audit says what to use)."""
    batch, options = BatchConfig, ScoringOptions
    group = parser.add_argument_group("scoring")
    group.add_argument(
        "--stride",
        type=positive,
        default=batch.stride,
        help=f"patch grid step in pixels; < 32 scores overlapping patches (default "
        f"{batch.stride}, the paper's)",
    )
    group.add_argument(
        "--patch-budget",
        type=positive,
        default=batch.patch_budget,
        help=f"most patches per forward pass; bounds memory (default {batch.patch_budget})",
    )
    group.add_argument(
        "--max-pixels",
        type=positive,
        default=batch.max_pixels,
        help=f"refuse larger images as too_large (default {batch.max_pixels})",
    )
    group.add_argument(
        "--max-patches",
        type=positive,
        default=batch.max_patches,
        help="refuse images with more patches as too_many_patches (checked from the header; "
        "default: no cap beyond --max-pixels; ~2,000-4,000 patches/s per CPU core)",
    )
    group.add_argument(
        "--max-bytes",
        type=positive,
        default=batch.max_bytes,
        help=f"refuse larger files/objects as too_large (default {batch.max_bytes})",
    )
    group.add_argument(
        "--read-timeout",
        type=_seconds,
        default=batch.read_timeout,
        help="seconds to read one file/object before its row fails with read_timeout "
        f"(default {batch.read_timeout:g})",
    )
    group.add_argument(
        "--decode-budget-mb",
        type=positive,
        default=batch.decode_budget_mb,
        help="MiB of decoded images held ahead of the network per task; a decode starts only "
        "when its size (from the header) fits, an image larger than the budget is decoded alone "
        f"(default {batch.decode_budget_mb})",
    )
    group.add_argument(
        "--decode-workers",
        type=positive,
        default=batch.decode_workers,
        help="threads that read and decode images ahead of the network (default: the CPUs "
        "where it runs, at most 8)",
    )
    group.add_argument(
        "--resize-reference",
        action="store_true",
        help="resize a reference to its distorted image's size instead of size_mismatch",
    )
    group.add_argument("--device", default=options.device, help=DEVICE_CHOICES_HELP)
    group.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=options.precision,
        help=PRECISION_HELP.replace("%", "%%"),
    )
    group.add_argument(
        "--max-error-rate",
        type=_rate,
        default=options.max_error_rate,
        help="exit 1 when the share of images that could not be scored exceeds this "
        "(0..1; default 0: any failed image)"
        if error_rate
        else argparse.SUPPRESS,
    )


def scoring_options(args: argparse.Namespace, *, with_patches: bool = False) -> ScoringOptions:
    return ScoringOptions(
        batch=BatchConfig(
            stride=args.stride,
            patch_budget=args.patch_budget,
            max_pixels=args.max_pixels,
            max_patches=args.max_patches,
            max_bytes=args.max_bytes,
            read_timeout=args.read_timeout,
            decode_budget_mb=args.decode_budget_mb,
            resize_reference=args.resize_reference,
            decode_workers=args.decode_workers,
            with_patches=with_patches,
        ),
        device=args.device,
        precision=args.precision,
        max_error_rate=args.max_error_rate,
    )
