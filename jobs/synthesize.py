"""spark-submit jobs/synthesize.py: make a KADID-style synthetic training set on Spark.

Photos (a folder, glob or s3:// prefix; default: the bundled sample photos) x distortion types
x levels: each (photo, type) group is distorted and weak-labelled on an executor
(deepiqa_core.training.synthetic), and the driver writes the manifest. Output (a folder on
storage every executor can write to, published atomically):

  OUT/references/<photo>.png, OUT/images/<photo>__<type>__<level>.png, OUT/manifest.parquet

The same seed gives the same pixels and labels as `deepiqa synthesize` on one machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # jobs/common.py, on the driver only

from common import job_main, publish_atomically  # noqa: E402

from deepiqa_core.datasets import make_manifest, write_manifest  # noqa: E402
from deepiqa_core.defaults import SAMPLES  # noqa: E402
from deepiqa_core.sources import is_s3, list_local, list_s3  # noqa: E402
from deepiqa_core.training.options import add_synthesis_arguments  # noqa: E402
from deepiqa_core.training.synthetic import (  # noqa: E402
    Group,
    photo_ids,
    plan_groups,
    render_group,
)

EXIT_OK, EXIT_USAGE, EXIT_FATAL = 0, 2, 3
DEFAULT_OUTPUT = Path("output/synthetic-default")
ROW_SCHEMA = (
    "id string, uri string, ref_uri string, ref_id string, score double, "
    "score_direction string, score_min double, score_max double, dataset string, "
    "distortion string, level int"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spark-submit jobs/synthesize.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("photos", nargs="?", default=str(SAMPLES / "nr"), help="folder, glob, s3://")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    p.add_argument("--overwrite", action="store_true")
    add_synthesis_arguments(p)
    p.add_argument("--partitions", type=int, help="default: one task per (photo, type) group")
    return p


def render_batches(batches, out_dir: str, uri_root: str, seed: int, long_side: int, levels):
    import pandas as pd

    for batch in batches:
        rows = []
        for rec in batch.itertuples(index=False):
            group = Group(rec.photo, rec.uri, rec.distortion, tuple(levels))
            rows += render_group(group, out_dir, seed, long_side, uri_root)
        yield pd.DataFrame(rows, columns=[c.split()[0] for c in ROW_SCHEMA.split(", ")])


def run(spark, argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    try:
        uris = list(list_s3(args.photos)) if is_s3(args.photos) else list_local(args.photos)
        if not uris:
            raise ValueError(f"no photos found in {args.photos}")
        groups = plan_groups(photo_ids(uris), args.distortions, args.levels)
    except ValueError as exc:
        print(f"synthesize.py: {exc}", file=sys.stderr)
        return EXIT_USAGE
    target = args.output.absolute()
    try:
        with publish_atomically(target, args.overwrite) as staging:
            frame = spark.createDataFrame(
                [(g.photo, g.uri, g.distortion) for g in groups],
                "photo string, uri string, distortion string",
            )
            frame = frame.repartition(args.partitions or len(groups))
            rendered = frame.mapInPandas(
                lambda it: render_batches(
                    it, str(staging), str(target), args.seed, args.long_side, args.levels
                ),
                ROW_SCHEMA,
            ).toPandas()
            manifest = make_manifest(rendered.sort_values("id").to_dict("records"))
            write_manifest(manifest, staging / "manifest.parquet")
    except FileExistsError as exc:
        print(f"synthesize.py: {exc}", file=sys.stderr)
        return EXIT_FATAL
    seconds = time.perf_counter() - started
    print(
        f"synthesize.py: {len(manifest)} images from {len(set(g.photo for g in groups))} photos "
        f"x {len(args.distortions)} types x {len(args.levels)} levels in {seconds:.1f} s "
        f"-> {target / 'manifest.parquet'}"
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return job_main(
        "deepiqa-synthesize", build_parser(), run, lambda _: {"spark.log.level": "WARN"}, argv
    )


if __name__ == "__main__":
    sys.exit(main())
