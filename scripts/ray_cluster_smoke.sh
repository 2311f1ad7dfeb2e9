#!/usr/bin/env bash
# Run the daily job on a real Ray cluster through `ray job submit`, as a user would:
# start a head node (GCS on 6390: 6379 is Redis), submit jobs/daily.py with the repo as working dir, stop the node.
#   bash scripts/ray_cluster_smoke.sh [CONFIG] [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-jobs/configs/tiny.toml}
DATA_DIR=$(realpath -m "${2:-data/cluster-smoke}")
export PATH="$PWD/.venv/bin:$PATH"  # the head node and the job use the venv
RAY=ray
export RAY_USAGE_STATS_ENABLED=0
$RAY stop --force >/dev/null 2>&1 || true
$RAY start --head --port 6390 --num-cpus 2 --dashboard-host 127.0.0.1 --dashboard-port 8265 --disable-usage-stats >/dev/null
trap '$RAY stop --force >/dev/null 2>&1 || true' EXIT
# The repo is the working dir; PYTHONPATH=lib makes the package importable on every
# node from that copy, so a remote cluster needs only the dependencies installed.
$RAY job submit --address http://127.0.0.1:8265 --working-dir . \
  --runtime-env-json '{"env_vars": {"PYTHONPATH": "lib"}}' \
  -- python jobs/daily.py --config "$CONFIG" --data-dir "$DATA_DIR"
echo "cluster run finished; outputs under $DATA_DIR"
