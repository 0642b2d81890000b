#!/usr/bin/env bash
# EMR 7.x bootstrap action (every node): Python 3.11 with the Spark 3.5 package set. EMR brings
# Spark 3.5 itself, so pyspark is not installed here.
#   aws emr create-cluster ... --release-label emr-7.5.0 \
#     --bootstrap-actions Path=s3://artifacts/deepiqa/bootstrap.sh,Args=[s3://artifacts/deepiqa]
set -euo pipefail
artifacts=${1:?usage: bootstrap.sh s3://bucket/prefix-with-constraints-spark35.txt}
sudo dnf install -y python3.11 python3.11-pip
aws s3 cp "$artifacts/constraints-spark35.txt" /tmp/constraints-spark35.txt
sudo python3.11 -m pip install --no-cache-dir -c /tmp/constraints-spark35.txt \
  torch numpy pillow simplejpeg safetensors tqdm pyarrow pandas boto3
