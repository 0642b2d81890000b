#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with the pinned package set (constraints.txt)
# and this project installed in editable mode. Re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.deepiqa-installed
want=$(cat constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade "pip>=24" "setuptools>=68" wheel
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[hdf5,spark,s3,train,dev,beam]"
  echo "$want" > "$stamp"
fi
