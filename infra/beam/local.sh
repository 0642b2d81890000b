#!/usr/bin/env bash
# jobs/score_beam.py on local Beam runners. Relative paths are taken from where you run it.
#
#   bash infra/beam/local.sh direct  INPUT OUTPUT [job or Beam flags...]  # DirectRunner, in process
#   bash infra/beam/local.sh workers INPUT OUTPUT [...]  # DirectRunner, one worker process per core
#   bash infra/beam/local.sh prism   INPUT OUTPUT [...]  # PrismRunner (Beam's portable Go runner)
#
# direct and workers are run by tests/test_beam.py. prism fetches its runner binary from the
# Beam release on GitHub the first time; offline, pass --prism_location /path/to/prism(.zip).
# DEEPIQA_PRINT_ARGS=1 prints the job's arguments instead of running it (the tests read them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ $# -lt 3 ]; then
  echo "usage: $0 direct|workers|prism INPUT OUTPUT [flags...]" >&2
  exit 2
fi
mode=$1 input=$2 output=$3
shift 3
args=("$input" --output "$output")
case "$mode" in
  direct) args+=(--runner DirectRunner) ;;
  workers)
    cores=$(nproc)
    # one torch thread per worker process: the processes share the cores
    args+=(--runner DirectRunner --direct_running_mode multi_processing
      --direct_num_workers "$cores" --torch-threads 1) ;;
  prism) args+=(--runner PrismRunner --environment_type LOOPBACK) ;;
  *)
    echo "unknown mode $mode: direct, workers or prism" >&2
    exit 2 ;;
esac
if [ "${DEEPIQA_PRINT_ARGS:-}" = 1 ]; then
  printf '%s\n' "${args[@]}" "$@"
  exit 0
fi
exec "$PY" "$ROOT/jobs/score_beam.py" "${args[@]}" "$@"
