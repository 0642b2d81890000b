#!/usr/bin/env bash
# The Spark 3.5 environment (constraints-spark35.txt), kept outside the checkout in a cache
# folder keyed by the pins, so CI's clean clones reuse it. Prints the environment's folder.
# The project is not installed into it: callers put the checkout on PYTHONPATH, so one cached
# environment serves every clone.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
key=$(cat constraints-spark35.txt | sha256sum | cut -c1-12)
env_dir="${DEEPIQA_CACHE:-$HOME/.cache/deepiqa}/venv-spark35-$key"
if [ ! -f "$env_dir/.complete" ]; then
  rm -rf "$env_dir"
  "$PY" -m venv "$env_dir"
  "$env_dir/bin/python" -m pip install -q --upgrade "pip>=24" >&2
  # the runtime dependencies of deepiqa_core[spark,s3] and the test tools, at these pins
  "$env_dir/bin/python" -m pip install -q -c constraints-spark35.txt \
    torch numpy pillow simplejpeg safetensors tqdm pyspark pyarrow pandas boto3 "moto[server]" pytest >&2
  touch "$env_dir/.complete"
fi
echo "$env_dir"
