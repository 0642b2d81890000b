"""spark-submit jobs/train.py: Petastorm-fed distributed DeepIQA training on Spark.

1. The manifest (``--manifest`` or ``--dataset NAME=ROOT``) is split by reference on the driver.
2. Executors fetch and check every image (``mapInPandas``), and the examples are written as
   Parquet under RUN/data/{train,val,test} (rows that cannot be used: RUN/data/rejected.parquet).
3. ``TorchDistributor`` starts --num-processes training processes (DDP: gloo on CPU, NCCL on
   GPU); each reads its shard of RUN/data/train through Petastorm, random crops cut in the
   reader's transform. Rank 0 validates every epoch, checkpoints, and finally writes
   RUN/model.safetensors and RUN/report.json.

The library does all of it (deepiqa_core.training); this file wires it to Spark.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # jobs/common.py, on the driver only

from common import job_main  # noqa: E402

from deepiqa_core.datasets import DatasetError  # noqa: E402
from deepiqa_core.datasets.splits import SPLITS  # noqa: E402
from deepiqa_core.training.examples import EXAMPLE_COLUMNS, fetch_examples  # noqa: E402
from deepiqa_core.training.options import (  # noqa: E402
    EPILOG,
    Plan,
    add_training_arguments,
    build_job,
    plan_run,
    prepared_data,
)
from deepiqa_core.training.prepare import REJECTED, finish_prepared  # noqa: E402
from deepiqa_core.training.run import train_worker  # noqa: E402

EXIT_OK, EXIT_USAGE, EXIT_FATAL = 0, 2, 3
MANIFEST_SCHEMA = (
    "row_id bigint, id string, uri string, ref_uri string, ref_id string, score double, "
    "score_direction string, score_min double, score_max double, dataset string, "
    "distortion string, level int, split string"
)

JOB_EPILOG = (
    EPILOG
    + """
distribution: --num-processes training processes (default 2). In local mode they run on the
  driver machine (TorchDistributor local_mode); on a cluster, one per executor task slot, and
  the run folder must then be on storage every node sees (NFS, a mounted volume). --use-gpu
  auto: on a cluster, when spark.executor.resource.gpu.amount is set; locally, when CUDA is
  available.

examples:
  spark-submit --master 'local[2]' jobs/train.py --manifest synthetic/manifest.parquet \\
      --variant wadiqam-fr --epochs 20 --output runs/fr
  spark-submit jobs/train.py --dataset tid2013=/data/tid2013 --variant wadiqam-nr \\
      --epochs 3000 --num-processes 8 --output runs/tid-nr --checkpoint-every 50
  spark-submit jobs/train.py ... --output runs/tid-nr --resume       # after a crash or kill
"""
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spark-submit jobs/train.py",
        description="Train DIQaM/WaDIQaM (paper protocol) on Spark: Petastorm-fed DDP under "
        "TorchDistributor.",
        epilog=JOB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_training_arguments(parser)
    parser.add_argument("--num-processes", type=int, default=2, help="DDP processes (default 2)")
    parser.add_argument("--use-gpu", choices=["auto", "yes", "no"], default="auto")
    return parser


def materialise(spark, plan: Plan, rows_per_file: int, processes: int) -> dict:
    """Fetch and check every image on the executors; write the splits' examples as Parquet."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    full_reference = plan.record["full_reference"]
    columns = [c.split()[0] for c in MANIFEST_SCHEMA.split(", ")]
    manifest = plan.manifest[columns].astype(object).where(plan.manifest[columns].notna(), None)
    frame = spark.createDataFrame(manifest, schema=MANIFEST_SCHEMA)
    schema = ", ".join(f"{name} {kind}" for name, kind in EXAMPLE_COLUMNS) + ", split string"

    def fetch(batches):
        for batch in batches:
            yield fetch_examples(batch, full_reference).assign(split=batch["split"].to_numpy())

    tasks = max(spark.sparkContext.defaultParallelism, math.ceil(len(manifest) / rows_per_file))
    # FR rows sharing a reference go to one task, which then reads that reference once.
    key = "ref_uri" if full_reference else "row_id"
    examples = frame.repartition(tasks, key).mapInPandas(fetch, schema)
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
        bad_rows = bad.toPandas()
    finally:
        examples.unpersist()
    bad_rows.to_parquet(plan.data_dir / REJECTED, index=False)
    rejected = bad_rows["error_code"].value_counts().to_dict()
    return finish_prepared(plan.data_dir, plan.record, counts, rejected)


def wants_gpu(spark, choice: str) -> bool:
    if choice != "auto":
        return choice == "yes"
    if spark.sparkContext.master.startswith("local"):
        import torch

        return torch.cuda.is_available()
    return float(spark.conf.get("spark.executor.resource.gpu.amount", "0") or 0) > 0


def run(spark, argv: list[str] | None = None) -> int:
    from pyspark.ml.torch.distributor import TorchDistributor

    args = build_parser().parse_args(argv)
    started = time.perf_counter()

    def prepare() -> dict:
        prepared = materialise(spark, plan, args.rows_per_file, args.num_processes)
        print(f"train.py: prepared {prepared['rows']}, rejected {prepared['rejected']}")
        return prepared

    try:
        plan = plan_run(args)
        prepared_data(plan, prepare)
    except (DatasetError, ValueError, FileExistsError) as exc:
        print(f"train.py: {exc}", file=sys.stderr)
        return EXIT_FATAL
    use_gpu = wants_gpu(spark, args.use_gpu)
    job = build_job(args, plan, use_gpu)
    local = spark.sparkContext.master.startswith("local")
    distributor = TorchDistributor(
        num_processes=args.num_processes, local_mode=local, use_gpu=use_gpu
    )
    summary = distributor.run(train_worker, job)
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(
        "train.py: " + json.dumps({k: v for k, v in summary.items() if k not in ("history", "fit")})
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    return job_main(
        "deepiqa-train",
        build_parser(),
        run,
        lambda _: {"spark.sql.execution.arrow.maxRecordsPerBatch": "64", "spark.log.level": "WARN"},
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
