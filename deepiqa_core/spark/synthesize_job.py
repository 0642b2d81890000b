"""The synthetic-data job (``spark-submit jobs/synthesize.py``): (photo, distortion type) groups
rendered and weak-labelled on the executors, the manifest written on the driver, the folder
published atomically. The same seed gives the same pixels and labels as ``deepiqa synthesize``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd
from pyspark.sql import SparkSession

from ..datasets import make_manifest, write_manifest
from ..errors import UsageError
from ..listing import list_images
from ..outputs import check_separate
from ..runs.publish import fingerprint
from ..training.options import SynthesisSpec
from ..training.synthetic import Group, photo_ids, plan_groups, render_group
from .publish import publish

ROW_SCHEMA = (
    "id string, uri string, ref_uri string, ref_id string, score double, "
    "score_direction string, score_min double, score_max double, dataset string, "
    "distortion string, level int"
)


@dataclass(frozen=True)
class _Render:
    """mapInPandas body: render each (photo, type) group of a batch (pickled by name)."""

    out_dir: str
    uri_root: str
    seed: int
    long_side: int
    levels: tuple[int, ...]
    label: str

    def __call__(self, batches):
        for batch in batches:
            rows = []
            for rec in batch.itertuples(index=False):
                group = Group(rec.photo, rec.uri, rec.distortion, self.levels, self.label)
                rows += render_group(group, self.out_dir, self.seed, self.long_side, self.uri_root)
            yield pd.DataFrame(rows, columns=[c.split()[0] for c in ROW_SCHEMA.split(", ")])


def run_synthesis_job(spark: SparkSession, spec: SynthesisSpec) -> pd.DataFrame:
    """Render the set into ``spec.output``; returns its manifest."""
    uris = list_images(spec.photos)
    if not uris:
        raise UsageError(f"no photos found in {spec.photos}")
    groups = plan_groups(photo_ids(uris), spec.distortions, spec.levels, spec.label)
    target = spec.output.absolute()
    started = time.perf_counter()
    check_separate(target, [spec.photos])
    key = fingerprint({"synthesis": repr(spec)})
    # executors write the images with Python's own I/O: a local or mounted (NFS) folder
    with publish(spark, str(target), overwrite=spec.overwrite, key=key, kind="synthetic") as run:
        staging = Path(run.local(run.work))
        frame = spark.createDataFrame(
            [(g.photo, g.uri, g.distortion) for g in groups],
            "photo string, uri string, distortion string",
        ).repartition(spec.partitions or len(groups))
        render = _Render(
            str(staging), str(target), spec.seed, spec.long_side, spec.levels, spec.label
        )
        rendered = cast(pd.DataFrame, frame.mapInPandas(render, ROW_SCHEMA).toPandas())
        manifest = make_manifest(rendered.sort_values("id").to_dict("records"))
        write_manifest(manifest, staging / "manifest.parquet")
    print(
        f"synthesize.py: {len(manifest)} images from {len({g.photo for g in groups})} photos "
        f"x {len(spec.distortions)} types x {len(spec.levels)} levels in "
        f"{time.perf_counter() - started:.1f} s -> {target / 'manifest.parquet'}"
    )
    return manifest
