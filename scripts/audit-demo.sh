#!/usr/bin/env bash
# A nightly audit in two minutes, on the bundled sample photos: audit them, degrade one photo,
# audit again (the second run scores only that photo), and print where the report is.
# Everything is written under output/audit-demo/ (refreshed on every demo run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PYSPARK_PYTHON="$PWD/.venv/bin/python" PYSPARK_DRIVER_PYTHON="$PWD/.venv/bin/python"
demo=output/audit-demo
rm -rf "$demo"
mkdir -p "$demo/library"
cp deepiqa_core/samples/nr/*.jpg "$demo/library/"
audit() {
  .venv/bin/spark-submit --master "local[*]" --conf spark.ui.showConsoleProgress=false \
    jobs/audit.py "$demo/library" --state "$demo/state" --alert "median_drop>5" "$@"
}
echo "== first run: every photo is new"
audit "$@"
echo "== a photo is degraded (JPEG quality 4, blur)"
.venv/bin/python - "$demo/library/coffee.jpg" <<'PY'
import sys
from PIL import Image, ImageFilter
path = sys.argv[1]
Image.open(path).filter(ImageFilter.GaussianBlur(3)).save(path, quality=4)
PY
echo "== second run: only the changed photo is scored (exit 1 if the median dropped by > 5)"
audit "$@" || code=$?
echo "reports: $(ls -d "$PWD/$demo"/state/runs/*/report.html | tr '\n' ' ')"
exit "${code:-0}"
