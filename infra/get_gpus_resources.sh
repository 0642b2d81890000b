#!/usr/bin/env bash
# Spark GPU discovery script (spark.executor.resource.gpu.discoveryScript): prints the GPUs this
# executor may use as {"name": "gpu", "addresses": ["0", "1", ...]}. Honours CUDA_VISIBLE_DEVICES
# when the cluster manager sets it; otherwise lists every GPU nvidia-smi sees.
set -euo pipefail
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
  ids=$(echo "$CUDA_VISIBLE_DEVICES" | tr ',' '\n')
else
  ids=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null || true)
fi
printf '{"name": "gpu", "addresses": ['
printf '%s\n' $ids | awk 'NF {printf "%s\"%s\"", (n++ ? ", " : ""), $1}'
printf ']}\n'
