"""The training job (``spark-submit jobs/train.py``): examples prepared on the executors, then
Petastorm-fed DDP under TorchDistributor.

1. The manifest is split by reference on the driver (``plan_run``).
2. Executors fetch and check every image (``mapInPandas``); the examples are written as Parquet
   under RUN/data/{train,val,test} (unusable rows: RUN/data/rejected.parquet).
3. ``TorchDistributor`` starts ``processes`` training processes (gloo on CPU, NCCL on GPU); each
   reads its shard through Petastorm (``deepiqa_core.training.run.train_worker``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import cast

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from ..datasets.splits import SPLITS
from ..devices import wants_gpu
from ..training.examples import EXAMPLE_COLUMNS, fetch_examples
from ..training.options import Plan, TrainSpec, build_job, plan_run, prepared_data
from ..training.prepare import REJECTED, finish_prepared
from ..training.run import train_worker

DEFAULT_PROCESSES = 2
MANIFEST_SCHEMA = (
    "row_id bigint, id string, uri string, ref_uri string, ref_id string, score double, "
    "score_direction string, score_min double, score_max double, dataset string, "
    "distortion string, level int, split string"
)


@dataclass(frozen=True)
class _Fetch:
    """mapInPandas body: manifest rows -> checked examples (pickled by name)."""

    full_reference: bool

    def __call__(self, batches):
        for batch in batches:
            examples = fetch_examples(batch, self.full_reference)
            yield examples.assign(split=batch["split"].to_numpy())


def materialise(spark: SparkSession, plan: Plan, processes: int) -> dict:
    """Fetch and check every image on the executors; write the splits' examples as Parquet."""
    full_reference = plan.record["full_reference"]
    rows_per_file = plan.spec.rows_per_file
    columns = [c.split()[0] for c in MANIFEST_SCHEMA.split(", ")]
    manifest = plan.manifest[columns].astype(object).where(plan.manifest[columns].notna(), None)
    frame = spark.createDataFrame(manifest, schema=MANIFEST_SCHEMA)
    schema = ", ".join(f"{name} {kind}" for name, kind in EXAMPLE_COLUMNS) + ", split string"
    tasks = max(spark.sparkContext.defaultParallelism, math.ceil(len(manifest) / rows_per_file))
    # FR rows sharing a reference go to one task, which then reads that reference once.
    key = "ref_uri" if full_reference else "row_id"
    examples = frame.repartition(tasks, key).mapInPandas(_Fetch(full_reference), schema)
    examples = examples.persist(StorageLevel.MEMORY_AND_DISK)
    counts = {}
    try:
        good = examples.filter(F.col("error_code").isNull())
        for split in SPLITS:
            rows = good.filter(F.col("split") == split).drop("split")
            n = rows.count()
            counts[split] = n
            if n:
                files = max(processes, math.ceil(n / rows_per_file))  # >= 1 row group per shard
                rows.repartition(files).write.parquet(str(plan.data_dir / split))
        bad = examples.filter(F.col("error_code").isNotNull()).drop("image", "ref_image")
        bad_rows = cast(pd.DataFrame, bad.toPandas())
    finally:
        examples.unpersist()
    bad_rows.to_parquet(plan.data_dir / REJECTED, index=False)
    rejected = bad_rows["error_code"].value_counts().to_dict()
    return finish_prepared(plan.data_dir, plan.record, counts, rejected)


def cluster_has_gpus(spark: SparkSession) -> bool:
    """Local mode: whether this machine has CUDA; a cluster: whether executors are given GPUs."""
    if (spark.sparkContext.master or "").startswith("local"):
        import torch

        return torch.cuda.is_available()
    return float(spark.conf.get("spark.executor.resource.gpu.amount", "0") or 0) > 0


def run_train_job(spark: SparkSession, spec: TrainSpec, processes: int) -> dict:
    """Prepare (or reuse) the examples, train with ``processes`` DDP processes; the summary."""
    from pyspark.ml.torch.distributor import TorchDistributor

    started = time.perf_counter()
    plan = plan_run(spec)

    def prepare() -> dict:
        prepared = materialise(spark, plan, processes)
        print(f"train.py: prepared {prepared['rows']}, rejected {prepared['rejected']}")
        return prepared

    prepared_data(plan, prepare)
    use_gpu = wants_gpu(spec.device, cluster_has_gpus(spark))
    local = (spark.sparkContext.master or "").startswith("local")
    distributor = TorchDistributor(num_processes=processes, local_mode=local, use_gpu=use_gpu)
    summary = distributor.run(train_worker, build_job(plan, use_gpu))
    assert summary is not None  # rank 0 returns the run's summary
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(
        "train.py: " + json.dumps({k: v for k, v in summary.items() if k not in ("history", "fit")})
    )
    return summary
