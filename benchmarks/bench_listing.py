"""Listing a large ``s3://`` prefix: the driver alone vs key ranges listed by executors.

moto's S3 server runs in this process on 127.0.0.1 (real HTTP, real boto3 paginators); the
keys are put straight into its backend (an HTTP PUT each would take longer than the listing).
For each layout (``flat``: hashed names in one prefix; ``tree``: ``date/partner/name``) it times

* ``driver``: ``listing.iter_images`` on the driver (one paginator, 1,000 keys a request);
* ``plan``: ``listing_parts.plan_listing`` alone (the probes), and the parts it made;
* ``executors``: ``spark.inputs.listed`` with a stage folder on ``local[N]`` (plan + one task
  per part + the Parquet write), the rows checked equal to the driver's;

and the driver process's peak RSS growth during each. moto answers every list request by
scanning its whole bucket, so a request costs O(keys) there (~0.2 s at 20,000 keys), unlike
S3, where it costs one round trip: the times are this server's, not AWS's. What carries over
is the number of requests: the driver's listing makes one per 1,000 keys, one after another;
the plan a few dozen, 16 at a time; the parts then list their ranges in parallel.

    python benchmarks/bench_listing.py --keys 100000 --master local[2] --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def start_moto() -> str:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    os.environ.update(
        AWS_ENDPOINT_URL=url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    return url


def fill(bucket: str, layout: str, count: int) -> None:
    from moto.s3.models import s3_backends

    from deepiqa_core.sources import s3_client

    s3_client().create_bucket(Bucket=bucket)
    backend = s3_backends["123456789012"]["aws"]
    for i in range(count):
        digest = hashlib.sha1(str(i).encode()).hexdigest()
        if layout == "flat":
            key = f"lib/{digest[:16]}.jpg"
        else:
            key = f"lib/2026-12-{i % 28 + 1:02d}/partner{i % 7}/{digest[:12]}.jpg"
        backend.put_object(bucket, key, b"")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(spark, bucket: str, tmp: Path) -> dict:
    from deepiqa_core import listing_parts
    from deepiqa_core.listing import iter_images
    from deepiqa_core.listing_parts import plan_listing
    from deepiqa_core.spark.inputs import listed

    source = f"s3://{bucket}/lib/"
    out: dict = {}
    started = time.perf_counter()
    driver = sorted(iter_images(source))
    out["driver_seconds"] = round(time.perf_counter() - started, 2)
    probes = []
    real = listing_parts._probe

    def counted(*args):
        probes.append(1)
        return real(*args)

    listing_parts._probe = counted  # count the plan's list requests (a real S3 bills them)
    started = time.perf_counter()
    try:
        plan = plan_listing(source, True, parts=4 * spark.sparkContext.defaultParallelism)
    finally:
        listing_parts._probe = real
    out["plan_seconds"] = round(time.perf_counter() - started, 2)
    out["plan_requests"] = len(probes)
    out["driver_requests"] = -(-len(driver) // listing_parts.PROBE_KEYS)
    out["parts"] = len(plan.parts) if plan else 0
    started = time.perf_counter()
    frame = listed(spark, source, True, "uri", stage=str(tmp / f"stage-{bucket}"))
    out["executors_seconds"] = round(time.perf_counter() - started, 2)
    found = sorted(r.uri for r in frame.collect())
    out["same_rows"] = found == driver
    out["rows"] = len(driver)
    out["ratio_driver_over_executors"] = round(out["driver_seconds"] / out["executors_seconds"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--layouts", nargs="+", default=["flat", "tree"])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    start_moto()
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(args.master)
        .config("spark.ui.enabled", "false")
        .config("spark.log.level", "WARN")
        .getOrCreate()
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for layout in args.layouts:
            bucket = f"bench-{layout}"
            started = time.perf_counter()
            fill(bucket, layout, args.keys)
            record = {"layout": layout, "keys": args.keys, "master": args.master}
            record["fill_seconds"] = round(time.perf_counter() - started, 1)
            record.update(measure(spark, bucket, Path(tmp)))
            record["driver_peak_rss_mib"] = round(rss_mib(), 1)
            print(json.dumps(record), flush=True)
            results.append(record)
    spark.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
