#!/usr/bin/env bash
# Set up (idempotently) and run the whole test suite plus the linter and the type checker.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy  # over deepiqa_core; settings and the baseline in pyproject.toml
.venv/bin/python -m pytest "$@"
