"""The ``deepiqa`` command: score images, convert and inspect weight files."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from .audit.options import AUDIT_EPILOG_PARTS, AuditSpec, add_audit_arguments
from .audit.outcome import build_parser as build_outcome_parser
from .batch import BatchScorer, ImageRow, RowResult
from .cli_training import add_training_commands
from .defaults import SAMPLES, WEIGHTS_HELP, default_weights
from .errors import DeepIQAError, UsageError
from .exits import ERROR_CODES_HELP, EXIT_CODES_HELP, ExitCode, run_entry, threshold_code
from .inputs import image_rows
from .local_scorer import load_scorer, read_weights
from .maps import save_map, score_for_map
from .models import VARIANTS, DeepIQA
from .options import (
    INPUTS_HELP,
    add_input_arguments,
    add_scoring_arguments,
    input_spec,
    scoring_options,
)
from .outputs import MAP_FORMATS, check_output_file, is_map_file, is_results_file
from .weights import SOURCES, WeightsMeta, import_weights, load_weights, save_weights
from .weights.format import SCORE_DIRECTIONS, weights_sha256

FORMATS = ("table", "json", "csv")

EPILOG = f"""\
{INPUTS_HELP}

{ERROR_CODES_HELP}

{EXIT_CODES_HELP}

examples:
  deepiqa score photo.jpg                      # the shipped default WaDIQaM-NR weights
  deepiqa score photos/ --weights nr.safetensors --output scores.csv   # format from the suffix
  deepiqa score s3://media/photos/ --format json
  deepiqa score manifest.parquet --uri-column path
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


@dataclass
class Row:
    path: str
    reference: str | None = None
    score: float | None = None
    num_patches: int | None = None
    in_range: bool | None = None
    error_code: str | None = None
    error_message: str | None = None


ROWS_PER_CALL = 64  # rows per BatchScorer call: the progress bar moves, memory stays bounded


def _score_rows(batch: BatchScorer, rows: Sequence[ImageRow], progress: bool) -> list[Row]:
    """Score with the same BatchScorer the Spark workers use: one Row per input row, in order.

    Rows sharing a reference are scored together, so its features are computed once."""
    order = sorted(range(len(rows)), key=lambda i: (str(rows[i].ref_uri), str(rows[i].uri)))
    out: list[Row | None] = [None] * len(rows)
    with tqdm(total=len(rows), unit="img", disable=not progress, file=sys.stderr) as bar:
        for start in range(0, len(order), ROWS_PER_CALL):
            part = order[start : start + ROWS_PER_CALL]
            results = batch.score_rows([rows[i] for i in part])
            for i, res in zip(part, results, strict=True):
                out[i] = _row(rows[i], res)
            bar.update(len(part))
    return [r for r in out if r is not None]


def _format_rows(rows: list[Row], fmt: str, full_reference: bool) -> str:
    columns = (
        ["path"]
        + (["reference"] if full_reference else [])
        + ["score", "num_patches"]
        + (["in_range"] if fmt != "table" else [])
        + ["error_code", "error_message"]
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


def output_format(fmt: str | None, output: str | None) -> str:
    """--format, else the --output file's suffix (.json, .csv), else a table."""
    if fmt is not None:
        return fmt
    suffix = Path(output).suffix.lower().lstrip(".") if output else ""
    return suffix if suffix in ("json", "csv") else "table"


def cmd_score(args: argparse.Namespace) -> int:
    if args.input is None:
        raise UsageError("score needs an INPUT (an image, folder, glob, s3:// prefix, manifest)")
    spec = input_spec(args)
    options = scoring_options(args)
    weights = Path(args.weights) if args.weights else default_weights(spec.ref is not None)
    _check_targets(args, [spec.source, spec.ref, weights])
    scorer, meta, sha = load_scorer(weights, options)
    rows = image_rows(spec, scorer.full_reference, meta.variant)
    if args.map is not None and len(rows) != 1:
        raise UsageError(f"--map needs a single image as input; {spec.source} has {len(rows)}")
    if not rows:
        raise DeepIQAError(f"no images found in {spec.source}")
    images = [r.uri for r in rows if r.uri] + [r.ref_uri for r in rows if r.ref_uri]
    _check_targets(args, images)

    started = time.perf_counter()
    batch = BatchScorer(scorer, meta.variant, sha, options.batch, meta.score_range)
    if args.map is not None:
        scored = [_score_with_map(batch, rows[0], args.map, meta.score_direction)]
    else:
        progress = not args.quiet and len(rows) > 1 and sys.stderr.isatty()
        scored = _score_rows(batch, rows, progress)
    elapsed = time.perf_counter() - started

    text = _format_rows(scored, output_format(args.format, args.output), scorer.full_reference)
    if args.output is not None:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    failed = sum(r.error_code is not None for r in scored)
    outside = sum(r.in_range is False for r in scored)
    if not args.quiet:
        print(
            f"deepiqa: scored {len(scored) - failed}/{len(scored)} images in {elapsed:.1f}s with "
            f"{meta.variant} ({sha[:12]}) on {scorer.compute}; score direction: "
            f"{meta.score_direction}",
            file=sys.stderr,
        )
    if outside and meta.score_range:  # outside counts only against a declared range
        low, high = meta.score_range
        print(
            f"deepiqa: warning: {outside} score(s) outside the model's declared range "
            f"{low:g}..{high:g} (in_range = false): the network is extrapolating",
            file=sys.stderr,
        )
    return threshold_code(failed, len(scored), options.max_error_rate)


def _check_targets(args: argparse.Namespace, inputs: Sequence[str | Path | None]) -> None:
    """--output / --map: checked before any work (``outputs.check_output_file``): never an
    input, never a file deepiqa did not write; a map's suffix names a picture format."""
    if args.output is not None:
        check_output_file(args.output, "--output", inputs, is_results_file)
    if args.map is not None:
        if Path(args.map).suffix.lower() not in MAP_FORMATS:
            raise UsageError(
                f"--map {args.map}: a map is a picture; name a {'/'.join(MAP_FORMATS)} file"
            )
        check_output_file(args.map, "--map", inputs, is_map_file)


def _score_with_map(batch: BatchScorer, row: ImageRow, target: str, direction: str) -> Row:
    """Score one image as every other (same errors), then draw its quality map (on the model's
    declared score range when it has one, so maps of different images compare)."""
    result, drawn = score_for_map(batch, row)
    if drawn is not None:
        save_map(
            *drawn,
            target,
            score=result.score,
            score_range=batch.score_range,
            label=batch.model_name,
            direction=direction,
        )
    return _row(row, result)


def _row(row: ImageRow, res: RowResult) -> Row:
    return Row(
        row.uri or row.id or "",  # a CLI row always has one of them
        row.ref_uri,
        res.score,
        res.num_patches,
        res.in_range,
        res.error_code,
        res.error_message,
    )


def cmd_convert(args: argparse.Namespace) -> int:
    model, meta = import_weights(args.source, args.source_layout, args.variant)
    if args.score_direction:
        meta.score_direction = args.score_direction
    if args.training_data:
        meta.training_data = args.training_data
    save_weights(model, args.destination, meta, half=args.half)
    print(f"wrote {args.destination}: {meta.variant} ({meta.source})")
    return ExitCode.OK


def cmd_info(args: argparse.Namespace) -> int:
    data = read_weights(Path(args.weights))
    model, meta = load_weights(data)
    info = json.loads(meta.to_json())
    info["sha256"] = weights_sha256(data)
    info["parameters"] = sum(p.numel() for p in model.parameters())
    print(json.dumps(info, indent=2, sort_keys=True))
    return ExitCode.OK


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
    return ExitCode.OK


def cmd_audit(args: argparse.Namespace) -> int:
    """The Spark audit job on this machine: the same library code in a local Spark session."""
    try:
        from .spark.audit.job import run_audit
        from .spark.session import QUIET, spark_session
    except ImportError as exc:  # pyspark is the spark extra
        raise UsageError(f"deepiqa audit needs the spark extra (deepiqa[spark]): {exc}") from None
    spec = AuditSpec.from_args(args)
    session = spark_session("deepiqa-audit", {**QUIET, "spark.ui.showConsoleProgress": "false"})
    try:
        return run_audit(session, spec)
    finally:
        session.stop()


def cmd_outcome(args: argparse.Namespace) -> int:
    from .audit.outcome import check

    return check(args.state, args.max_age_hours)


def cmd_report(args: argparse.Namespace) -> int:
    from .audit.publish_report import publish_report

    done = publish_report(args.state, args.publish, args.expires_hours, args.public_base)
    print(f"deepiqa report: run {done['run_id']} published to {done['objects'][0]}")
    print(f"  open: {done['links'][0]}")
    print(f"  latest: {done['links'][1]} ({done['objects'][1]})")
    return ExitCode.OK


def cmd_samples(args: argparse.Namespace) -> int:
    print(SAMPLES)
    return ExitCode.OK


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
        help="score images (NR), or distorted images against references (FR)",
        description=(
            "Score images with a weights file: an image, a folder, a glob, an s3:// prefix or a "
            "manifest, listed and paired exactly as spark-submit jobs/score.py does. A file that "
            "cannot be scored gets a row with error_code (decode_error, too_small, too_large, "
            "unsupported_image, size_mismatch, unpaired, missing, access_denied, read_error) "
            "and the rest are still scored."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(score, input_help="an image, folder, glob, s3:// prefix or manifest")
    score.add_argument("--weights", help=WEIGHTS_HELP)
    score.add_argument(
        "--format", choices=FORMATS, help="default: from --output's suffix, else table"
    )
    score.add_argument("--output", help="write the table/JSON/CSV here instead of stdout")
    score.add_argument(
        "--map",
        metavar="OUT.png",
        help="(single image) also write a picture: image | local quality | patch weight",
    )
    add_scoring_arguments(score)
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

    audit = sub.add_parser(
        "audit",
        help="audit a library's quality: incremental runs, history, report, alert exit codes",
        description="spark-submit jobs/audit.py on this machine (a local Spark session; needs "
        "the spark extra): the same options, state, report and exit codes.",
        epilog="\n\n".join([INPUTS_HELP, *AUDIT_EPILOG_PARTS, EXIT_CODES_HELP]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_arguments(audit, input_help="LIBRARY: folder, glob, s3:// prefix or manifest")
    audit.add_argument("--weights", type=Path, help=WEIGHTS_HELP)
    add_audit_arguments(audit)
    add_scoring_arguments(audit, error_rate=False)
    audit.set_defaults(func=cmd_audit)

    outcome_help = build_outcome_parser("deepiqa outcome")
    outcome = sub.add_parser(
        "outcome",
        help="exit by the last audit's outcome (STATE/_OUTCOME): 0 ok, 1 alert, 3 failed",
        description=outcome_help.description,
        parents=[outcome_help],
        add_help=False,
    )
    outcome.set_defaults(func=cmd_outcome)

    report = sub.add_parser(
        "report",
        help="publish an audit state's latest report where a browser opens it (S3)",
        description=(
            "Copy the latest run's report.html of an audit STATE to s3://bucket/prefix/<run>/ "
            "and s3://bucket/prefix/latest.html (served as HTML) and print a link a browser "
            "opens: a presigned URL (the bucket stays private) or, with --public-base, the "
            "address of your own site that serves the prefix."
        ),
    )
    report.add_argument("state", help="the audit's --state (path, file:, s3://, s3a://)")
    report.add_argument("--publish", required=True, metavar="S3_PREFIX")
    report.add_argument(
        "--expires-hours", type=float, default=168, help="presigned link lifetime (7 days)"
    )
    report.add_argument(
        "--public-base", help="e.g. https://reports.example.com/deepiqa (serves S3_PREFIX)"
    )
    report.set_defaults(func=cmd_report)

    samples = sub.add_parser("samples", help="print the folder of the bundled sample images")
    samples.set_defaults(func=cmd_samples)
    add_training_commands(sub, argparse.RawDescriptionHelpFormatter)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_entry("deepiqa", lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
