#!/usr/bin/env bash
# EMR 7.x bootstrap action (every node): Python 3.11 with the Spark 3.5 package set. EMR brings
# Spark 3.5 itself, so pyspark is not installed here.
#   aws emr create-cluster ... --release-label emr-7.5.0 \
#     --bootstrap-actions Path=s3://artifacts/deepiqa/bootstrap.sh,Args=[s3://artifacts/deepiqa]
# torch comes from the CPU index (~200 MB, not the multi-GB CUDA build) unless a second
# argument names another index: GPU instance fleets pass https://download.pytorch.org/whl/cu128.
# The steps: step.json (scoring), audit-step.json (the nightly audit; s3:// is EMRFS here, so
# the state needs no connector). Instance profile: infra/iam/deepiqa-audit-policy.json.
set -euo pipefail
artifacts=${1:?usage: bootstrap.sh s3://bucket/prefix-with-constraints-spark35.txt [torch index]}
torch_index=${2:-https://download.pytorch.org/whl/cpu}
sudo dnf install -y python3.11 python3.11-pip
aws s3 cp "$artifacts/constraints-spark35.txt" /tmp/constraints-spark35.txt
sudo python3.11 -m pip install --no-cache-dir --index-url "$torch_index" \
  --extra-index-url https://pypi.org/simple -c /tmp/constraints-spark35.txt \
  torch numpy pillow simplejpeg safetensors tqdm pyarrow pandas boto3
