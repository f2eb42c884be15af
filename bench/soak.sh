#!/usr/bin/env bash
# Soak: starts one ferrocache and runs `ferrobench --soak` against it; this script only starts
# and stops the server. The load and every check are ferrobench's (`ferrobench --help`, and
# bench/src/soak/mod.rs): memcached text, meta and binary and RESP connections at once,
# get/set/delete/incr and hash/sorted-set ops with values of 10 B-100 KB (log-uniform, half
# compressible), every reply checked against what was written, and the server's RSS sampled
# every second against -m + 64 MiB + 10 % of -m.
#
# Usage: bench/soak.sh [MINUTES] [MEMORY_MB] [FERROBENCH FLAGS...]
#   e.g. bench/soak.sh 3 64 --json       (defaults: 2 minutes, -m 64)
# FERROCACHE=... FERROBENCH=... point it at other builds (default: target/release, or
# $CARGO_TARGET_DIR/release). Exit status: ferrobench's (0 pass, 1 errors, 4 wrong values,
# 5 RSS above the bound).
set -euo pipefail
MINUTES=${1:-2}
MEMORY=${2:-64}
shift $(($# < 2 ? $# : 2))
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CARGO_TARGET_DIR:-$root/target}/release
FERRO=${FERROCACHE:-$build/ferrocache}
BENCH=${FERROBENCH:-$build/ferrobench}
for need in "$FERRO" "$BENCH"; do
    [ -x "$need" ] || { echo "soak.sh: $need not found; build it with: cargo build --release -p ferrocache -p ferrocache-bench" >&2; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); resp=$(free_port)
"$FERRO" -l 127.0.0.1 -p "$port" --resp-port "$resp" -t 2 -m "$MEMORY" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$resp") 2>/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { echo "soak.sh: ferrocache exited at start" >&2; exit 1; }
    sleep 0.05
done
echo "+ $BENCH --soak $MINUTES -s 127.0.0.1:$port --resp-server 127.0.0.1:$resp --server-pid $server -m $MEMORY${*:+ $*}" >&2
"$BENCH" --soak "$MINUTES" -s "127.0.0.1:$port" --resp-server "127.0.0.1:$resp" \
    --server-pid "$server" -m "$MEMORY" "$@"
