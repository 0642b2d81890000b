"""spark-submit jobs/train.py: Petastorm-fed distributed DeepIQA training on Spark.

Arguments only; the job is ``deepiqa_core.spark.train_job``: examples fetched and checked on the
executors, then ``TorchDistributor`` runs --num-processes DDP processes that read their shards
through Petastorm.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from deepiqa_core.exits import EXIT_CODES_HELP
from deepiqa_core.spark.session import run_job
from deepiqa_core.spark.train_job import DEFAULT_PROCESSES, run_train_job
from deepiqa_core.training.options import (
    EPILOG,
    add_training_arguments,
    held_out_verdict,
    train_spec,
)

JOB_EPILOG = f"""{EPILOG}
distribution: --num-processes training processes (default {DEFAULT_PROCESSES}). In local mode they
  run on the driver machine (TorchDistributor local_mode); on a cluster, one per executor task
  slot, and the run folder must then be on storage every node sees (NFS, a mounted volume).
  --device auto: GPUs (NCCL) on a cluster when spark.executor.resource.gpu.amount is set;
  locally, when CUDA is available; else CPUs (gloo).

{EXIT_CODES_HELP}

examples:
  spark-submit --master 'local[2]' jobs/train.py --manifest synthetic/manifest.parquet \\
      --variant wadiqam-fr --epochs 20 --output runs/fr
  spark-submit jobs/train.py --dataset tid2013=/data/tid2013 --variant wadiqam-nr \\
      --epochs 3000 --num-processes 8 --output runs/tid-nr --checkpoint-every 50
  spark-submit jobs/train.py ... --output runs/tid-nr --resume       # after a crash or kill
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spark-submit jobs/train.py",
        description="Train DIQaM/WaDIQaM (paper protocol) on Spark: Petastorm-fed DDP under "
        "TorchDistributor.",
        epilog=JOB_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_training_arguments(parser)
    parser.add_argument(
        "--num-processes", type=int, default=DEFAULT_PROCESSES, help="DDP processes"
    )
    return parser


def main(argv: list[str] | None = None, spark=None) -> int:
    command = " ".join(shlex.quote(a) for a in (sys.argv if argv is None else ["train.py", *argv]))

    def body(session, args) -> int:
        spec = train_spec(args, command)
        return held_out_verdict(run_train_job(session, spec, args.num_processes), spec)

    return run_job(
        "spark-submit jobs/train.py",
        build_parser(),
        body,
        argv,
        conf=lambda _: {
            "spark.sql.execution.arrow.maxRecordsPerBatch": "64",
            "spark.log.level": "WARN",
        },
        spark=spark,
    )


if __name__ == "__main__":
    sys.exit(main())
