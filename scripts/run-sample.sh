#!/usr/bin/env bash
# `make run`: follows a copy of the bundled sample log, with its timestamps moved to now (drops older than
# PACKET_DROP_EXPIRATION_MINUTES are not reported), and prints every drop as JSON. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=target/release/kube-iptables-tailer
dir=target/sample
mkdir -p "$dir"
now=$(date -u +%Y-%m-%dT%H:%M:%S.%6N+00:00)
sed "s/^[^ ]*/$now/" samples/kern.log >"$dir/kern.log"
echo "following $dir/kern.log; append lines to it to see them; metrics on :${METRICS_SERVER_PORT:-9090}/metrics" >&2
export IPTABLES_LOG_PATH="$PWD/$dir/kern.log"
export IPTABLES_LOG_PREFIX="${IPTABLES_LOG_PREFIX:-calico-drop:,nft-drop:}"
exec "$binary" --from-beginning "$@"
