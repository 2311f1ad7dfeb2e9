#!/usr/bin/env bash
# Manual check that the validation HTML renders in a real headless browser.
#
#   bash scripts/screenshot_report.sh DATA_DIR [DATE] [STAGE]
#
# Needs chromium (Debian: `apt-get install -y chromium`, as root). Writes PNG
# screenshots of the project report and of the Great Expectations Data Docs
# index next to them, under DATA_DIR/reports/screenshots/, and prints their paths;
# open them to see the page really rendered (verdict, tables, plots).
# Example after `python jobs/ingest.py --config jobs/configs/demo.toml --data-dir /tmp/demo`
# and `python jobs/validate.py --config jobs/configs/demo.toml --data-dir /tmp/demo`:
#   bash scripts/screenshot_report.sh /tmp/demo
set -euo pipefail
data_dir=${1:?usage: $0 DATA_DIR [DATE] [STAGE]}
stage=${3:-all}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no chromium on PATH: apt-get install -y chromium" >&2; exit 2; }
if [ -n "${2:-}" ]; then
  report="$data_dir/reports/validation/date=$2/$stage/report.html"
else
  report=$(ls -d "$data_dir"/reports/validation/date=*/"$stage"/report.html | sort | tail -1)
fi
[ -f "$report" ] || { echo "no report at $report: run jobs/validate.py first" >&2; exit 2; }
out="$data_dir/reports/screenshots"
mkdir -p "$out"
shot() {
  "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --hide-scrollbars \
    --window-size=1280,2400 --screenshot="$2" "file://$(realpath "$1")" 2>/dev/null
  echo "$2"
}
shot "$report" "$out/report.png"
docs="$data_dir/reports/data_docs/index.html"
[ -f "$docs" ] && shot "$docs" "$out/data_docs.png"
