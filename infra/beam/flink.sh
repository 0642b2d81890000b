#!/usr/bin/env bash
# jobs/score_beam.py on Apache Flink (not run here: no Flink cluster or job-server jar offline).
#
#   FLINK_MASTER=flink-jm:8081 bash infra/beam/flink.sh runner INPUT OUTPUT [flags...]
#   JOB_ENDPOINT=localhost:8099 bash infra/beam/flink.sh portable INPUT OUTPUT [flags...]
#
# runner:   FlinkRunner starts Beam's Flink job server itself (it fetches the job-server jar
#           for --flink_version from Maven Central once; offline: --flink_job_server_jar JAR).
# portable: a job server you run beside the cluster, e.g.
#           docker run --net=host apache/beam_flink1.18_job_server:2.71.0 --flink-master=HOST:8081
#
# Workers run the Python SDK in a container by default (--environment_type DOCKER, an image with
# the pinned packages and the wheel, like infra/beam/Dockerfile); PROCESS or EXTERNAL
# environments use Python already installed on the task managers. The output must be a file
# system every task manager and the launcher see: s3:// (through Beam's S3 file system:
# AWS_* settings on the workers), gs://, or a shared mount at the same path.
# DEEPIQA_PRINT_ARGS=1 prints the job's arguments instead of running it (the tests read them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
if [ $# -lt 3 ]; then
  echo "usage: $0 runner|portable INPUT OUTPUT [flags...]" >&2
  exit 2
fi
mode=$1 input=$2 output=$3
shift 3
ENVIRONMENT=${ENVIRONMENT:-DOCKER}
IMAGE=${IMAGE:-registry.example.com/deepiqa-beam:0.1.0}
args=("$input" --output "$output" --environment_type "$ENVIRONMENT")
[ "$ENVIRONMENT" = DOCKER ] && args+=(--environment_config "$IMAGE")
case "$mode" in
  runner)
    : "${FLINK_MASTER:?set FLINK_MASTER (host:port of the JobManager REST API)}"
    args+=(--runner FlinkRunner --flink_master "$FLINK_MASTER" --flink_version 1.18
      --parallelism "${PARALLELISM:-8}") ;;
  portable)
    : "${JOB_ENDPOINT:?set JOB_ENDPOINT (host:port of the Flink job server)}"
    args+=(--runner PortableRunner --job_endpoint "$JOB_ENDPOINT") ;;
  *)
    echo "unknown mode $mode: runner or portable" >&2
    exit 2 ;;
esac
if [ "${DEEPIQA_PRINT_ARGS:-}" = 1 ]; then
  printf '%s\n' "${args[@]}" "$@"
  exit 0
fi
exec "$PY" "$ROOT/jobs/score_beam.py" "${args[@]}" "$@"
