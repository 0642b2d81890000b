#!/usr/bin/env bash
# jobs/score_beam.py on Google Cloud Dataflow (not run here: no cloud account offline).
#
#   PROJECT=my-project REGION=europe-west4 BUCKET=gs://my-bucket \
#     bash infra/beam/dataflow.sh cpu|gpu MANIFEST [job flags...]
#
# The launcher needs `pip install apache-beam[gcp]` (pinned beside constraints.txt). Inputs:
# a local or s3:// manifest whose uris are gs:// (read by the workers through Beam's
# FileSystems), or a Parquet table of image bytes; the output is $BUCKET/deepiqa/<date>
# (published by _LATEST), the weights are staged there for the workers.
#
# cpu: the workers install the deepiqa wheel (bash infra/build_wheel.sh) with --extra_package;
#      its dependencies (torch ...) come from PyPI on each worker.
# gpu: a custom container (infra/beam/Dockerfile, pushed as $IMAGE) with CUDA torch and the
#      wheel; one NVIDIA L4 per worker with the driver installed by Dataflow. One SDK process
#      per VM holds the one model on the GPU (no_use_multiple_sdk_containers); bigger batches
#      keep it busy; --precision auto runs bf16 there (~5x fp32, scores within ~1 point).
# DEEPIQA_PRINT_ARGS=1 prints the job's arguments instead of running it (the tests read them).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
: "${PROJECT:?set PROJECT}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET (gs://...)}"
if [ $# -lt 2 ]; then
  echo "usage: $0 cpu|gpu MANIFEST [flags...]" >&2
  exit 2
fi
mode=$1 input=$2
shift 2
VERSION=${VERSION:-0.1.0}
args=("$input" --output "$BUCKET/deepiqa/$(date -u +%Y-%m-%d)" --overwrite
  --max-error-rate 0.01
  --runner DataflowRunner --project "$PROJECT" --region "$REGION"
  --temp_location "$BUCKET/tmp" --staging_location "$BUCKET/staging"
  --job_name "deepiqa-score-$(date -u +%Y%m%d-%H%M%S)"
  --experiments use_runner_v2)
case "$mode" in
  cpu)
    args+=(--machine_type n2-standard-4 --max_num_workers 20
      --extra_package "$ROOT/dist/deepiqa-$VERSION-py3-none-any.whl") ;;
  gpu)
    : "${IMAGE:?set IMAGE (the container built from infra/beam/Dockerfile)}"
    # an L4 (bf16 tensor cores; a T4 only emulates bf16, so auto would run fp32 there)
    args+=(--machine_type g2-standard-8 --max_num_workers 4
      --sdk_container_image "$IMAGE"
      --dataflow_service_options "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver"
      --experiments no_use_multiple_sdk_containers
      --device cuda --precision auto --max-batch-rows 256) ;;
  *)
    echo "unknown mode $mode: cpu or gpu" >&2
    exit 2 ;;
esac
if [ "${DEEPIQA_PRINT_ARGS:-}" = 1 ]; then
  printf '%s\n' "${args[@]}" "$@"
  exit 0
fi
exec "$PY" "$ROOT/jobs/score_beam.py" "${args[@]}" "$@"
