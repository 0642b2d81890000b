#!/usr/bin/env bash
# The Airflow environment (constraints-airflow.txt): Airflow 3 and its Spark provider, for loading
# and checking the nightly audit DAG (infra/airflow/). Kept outside the checkout in a cache folder
# keyed by the pins, so CI's clean clones reuse it, and apart from .venv: the provider pulls
# `pyspark-client`, which clashes with the project's pinned pyspark. Prints the environment's
# folder on stdout; pip's output goes to stderr. Neither deepiqa nor pyspark is installed into it:
# the DAG only builds a spark-submit command line.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
key=$(cat constraints-airflow.txt | sha256sum | cut -c1-12)
env_dir="${DEEPIQA_CACHE:-$HOME/.cache/deepiqa}/venv-airflow-$key"
if [ ! -f "$env_dir/.complete" ]; then
  rm -rf "$env_dir"
  "$PY" -m venv "$env_dir"
  "$env_dir/bin/python" -m pip install -q --upgrade "pip>=24" >&2
  "$env_dir/bin/python" -m pip install -q -c constraints-airflow.txt \
    apache-airflow apache-airflow-providers-apache-spark >&2
  touch "$env_dir/.complete"
fi
echo "$env_dir"
