#!/usr/bin/env bash
# The test command: lint, types, then every tier (unit, integration, e2e).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
bash scripts/services.sh
dirs=(); for d in lib tests jobs benchmarks feature_repo validations; do [ -d "$d" ] && dirs+=("$d"); done
$VENV/bin/ruff check "${dirs[@]}"
$VENV/bin/mypy
$VENV/bin/python -m pytest "$@"
