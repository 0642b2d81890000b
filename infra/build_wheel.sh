#!/usr/bin/env bash
# Build the pure-Python wheel of deepiqa (library, default weights, sample images) into dist/,
# plus the same file named .zip for spark-submit --py-files: PySpark puts only .zip/.egg/.jar
# py-files on executors' sys.path, not .whl (a wheel is a zip, so the copy imports fine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
rm -rf dist
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w dist .
for whl in dist/*.whl; do cp "$whl" "${whl%.whl}.zip"; done
ls dist/
