#!/usr/bin/env bash
# The test command: lint, types, then every tier (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
bash scripts/services.sh
$VENV/bin/ruff check lib tests jobs benchmarks feature_repo validations
$VENV/bin/mypy
$VENV/bin/python -m pytest "$@"
