#!/usr/bin/env bash
# Dataproc 2.2 (Spark 3.5, Python 3.11): the nightly scoring job. The cluster needs the Spark
# 3.5 package set on every node, e.g. an initialization action that runs
#   python3 -m pip install -c constraints-spark35.txt torch numpy pillow simplejpeg safetensors tqdm pyarrow pandas boto3
# Images in GCS are not read object by object (no gs:// reader yet): score a Parquet table of
# image bytes, which Spark reads through the cluster's GCS connector, as this example does.
set -euo pipefail
cluster=${CLUSTER:-deepiqa}
region=${REGION:-us-central1}
gcloud dataproc jobs submit pyspark jobs/score.py \
  --cluster="$cluster" --region="$region" \
  --py-files=dist/deepiqa-0.1.0-py3-none-any.zip \
  --properties=spark.sql.execution.arrow.maxRecordsPerBatch=64 \
  -- gs://media/manifests/library.parquet --bytes-column image \
  --output gs://media/deepiqa/nightly --overwrite --resume --csv --max-error-rate 0.01
