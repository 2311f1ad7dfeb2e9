#!/usr/bin/env bash
# Screenshot every report of a run in headless Chromium, offline, to look at them.
#
#   bash scripts/screenshot_report.sh DATA_DIR [DATE]
#
# DATE defaults to the newest run under DATA_DIR/runs/. Covers the run report, the
# data-quality and imbalance report and the Great Expectations Data Docs index of
# each gate, the scoring report, the latest tune report and the backtest report
# (those that exist). Writes PNGs to DATA_DIR/reports/screenshots/date=DATE/ and
# prints their paths. Needs chromium (scripts/services.sh installs it, as root).
# Example after `make demo`:  bash scripts/screenshot_report.sh data/demo
set -euo pipefail
data_dir=$(realpath "${1:?usage: $0 DATA_DIR [DATE]}")
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium on PATH: bash scripts/services.sh (as root)" >&2; exit 2; }
if [ -n "${2:-}" ]; then
  date=$2
else
  date=$(ls -d "$data_dir"/runs/date=* 2>/dev/null | sort | tail -1 | sed 's/.*date=//')
fi
[ -n "$date" ] || { echo "no run under $data_dir/runs: run jobs/daily.py first" >&2; exit 2; }
out="$data_dir/reports/screenshots/date=$date"
mkdir -p "$out"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# name -> page; one line per report (add new reports here).
# The scoring report of the date (reports/scoring/date=D).
scoring=$(find "$data_dir/reports/scoring" -name '*scoring_report*.html' -path "*$date*" 2>/dev/null | head -1 || true)
pages=(
  "run_report=$data_dir/runs/date=$date/report.html"
  "scoring_report=$scoring"
  "tune_report=$data_dir/tune/latest/report.html"
  "backtest_report=$data_dir/backtest/date=$date/report.html"
)
for stage in canonical features training all; do
  pages+=("imbalance_$stage=$data_dir/reports/validation/date=$date/$stage/report.html")
  pages+=("data_docs_$stage=$data_dir/reports/data_docs/$stage/index.html")
done
shot() {  # page -> png, networking off, a fresh profile, scripts given time to run
  "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile/$(basename "$2" .png)" --hide-scrollbars \
    --virtual-time-budget=10000 --window-size=1280,2000 --screenshot="$2" \
    "file://$1" >/dev/null 2>&1
}
for entry in "${pages[@]}"; do
  name=${entry%%=*}
  page=${entry#*=}
  [ -n "$page" ] && [ -f "$page" ] || continue
  shot "$page" "$out/$name.png"
  echo "$out/$name.png  <- $page"
done
