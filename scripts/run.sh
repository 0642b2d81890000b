#!/usr/bin/env bash
# Set up (idempotently) and run the main job: spark-submit jobs/score.py on its embedded default
# (the bundled sample images, NR and FR, with the shipped default weights, Spark in local mode).
# Extra arguments go to the job, e.g.: bash scripts/run.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYSPARK_PYTHON="$PWD/.venv/bin/python" PYSPARK_DRIVER_PYTHON="$PWD/.venv/bin/python"
exec .venv/bin/spark-submit --master "local[*]" --conf spark.ui.showConsoleProgress=false \
  jobs/score.py "$@"
